"""A local emulator of the VideoRetalk service (see `server.Emulator`)."""

from retalk.emulator.clock import Clock
from retalk.emulator.faults import Faults
from retalk.emulator.server import Emulator

__all__ = ["Clock", "Emulator", "Faults"]
