"""The exceptions retalk raises. A bad input is never an exception: it is a finding.

RetalkError
 └── EnvironmentProblem      the machine lacks something retalk needs (exit code 3)
      └── ToolMissing        ffprobe is not installed, or not where RETALK_FFPROBE says
"""

from __future__ import annotations


class RetalkError(Exception):
    """The root of every exception retalk raises on purpose."""


class EnvironmentProblem(RetalkError):
    """The machine lacks something retalk needs; no input is at fault."""


class ToolMissing(EnvironmentProblem):
    """An external program retalk runs could not be started."""

    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} not found: {hint}")
        self.tool = tool
        self.hint = hint


class ModelUnavailable(EnvironmentProblem):
    """An analysis model (faces, speech) could not be loaded."""
