"""A local emulator of the VideoRetalk service (see `server.Emulator`)."""

from retalk.client.emulator.faults import Faults
from retalk.client.emulator.server import Emulator

__all__ = ["Emulator", "Faults"]
