"""The exceptions retalk raises: one tree, drawn here and nowhere else. A bad input is never an
exception: it is a finding.

    RetalkError                             retalk  the root
     ├── EnvironmentProblem                 retalk  the machine or its setup lacks something
     │    ├── ToolMissing                   retalk  ffprobe is missing, or not at RETALK_FFPROBE
     │    ├── ToolKilled                    retalk  ffprobe or ffmpeg was ended by a signal
     │    ├── ModelUnavailable              retalk  a face or speech model would not load
     │    ├── MissingApiKey                 client  no key: argument, environment, key file
     │    └── InvalidSetting                client  a key not one line of ASCII, a bad base URL
     ├── PolicyError                        retalk  a project policy or a code prefix that is wrong
     ├── FixRefused                         retalk  `fix` will not write: over its input …
     ├── LedgerError                        retalk  a job ledger that cannot be used
     │    └── LedgerBusy                    retalk  another batch is running on the ledger
     └── ApiError                           client  the service, or the way to it, said no
          ├── TransportError                client  no answer: refused, dropped, out of time
          │    └── SubmitLost               client  a submit sent, its answer lost: a task may exist
          ├── InvalidAnswer                 client  an answer not as the API describes it
          ├── ApiStatusError                client  an error answer: the platform's code
          │    ├── InvalidRequest           client  400: InvalidParameter, InvalidFile.* …
          │    ├── AuthenticationError      client  401: InvalidApiKey
          │    ├── PermissionDenied         client  403: AccessDenied*, Arrearage, old link
          │    ├── NotFound                 client  404: Model.NotExist, no such result
          │    ├── RateLimited              client  429: Throttling* (after retries)
          │    └── ServerError              client  5xx: InternalError, ServiceUnavailable
          ├── ResultExpired                 client  the result link's time is past
          ├── InvalidResult                 client  the file fetched is not the task's video
          ├── TaskFailed                    client  the task ended FAILED or CANCELED
          └── WaitTimeout                   client  the task had not ended in time

`retalk` or `client` (`retalk.client`): the package that exports the class. An
EnvironmentProblem is exit code 3 in the command line, a PolicyError 2 (usage), a
FixRefused 2 or 1 (its `usage`), a
LedgerError 3 (`retalk.jobs.ledger`). The service's branch lives in `retalk.client.errors`,
which alone builds it: `error_from_answer` from an error answer, `error_from_httpx` from
anything httpx raises. Every failure a caller of the client can meet is one of these (or a
ValueError for a bad argument, an OSError for a local file).
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


class ToolKilled(EnvironmentProblem):
    """An external program was ended by a signal (an out-of-memory kill, a crash): the
    machine's trouble, not a verdict on the file."""


class ModelUnavailable(EnvironmentProblem):
    """An analysis model (faces, speech) could not be loaded."""


class PolicyError(RetalkError):
    """A project policy that cannot be used (a config file's mistake, a value looser than the
    service's), or a code prefix no finding code starts with."""


class FixRefused(RetalkError):
    """`retalk fix` writes nothing: the output would replace its input or an existing file
    (`usage`), or the input cannot be made into a file the service takes (a clip under 2 s,
    an empty or cut file, audio given as the video)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage
        """True for a mistake in how fix was called (exit 2), False for the input's (exit 1)."""


class LedgerError(RetalkError):
    """A job ledger that cannot be used: not a ledger, of a newer schema, or not writable."""


class LedgerBusy(LedgerError):
    """Another process is running a batch on the same ledger."""
