"""A local emulator of the VideoRetalk service (see `server.Emulator`)."""

from retalk.emulator.faults import Faults
from retalk.emulator.server import Emulator

__all__ = ["Emulator", "Faults"]
