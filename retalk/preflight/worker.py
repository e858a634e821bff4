"""A worker process of `retalk.preflight.many`: `python -m retalk.preflight.worker
[--no-content]` reads the policy (a base64 pickle) on its first line, then one JSON path a line
on its input, and answers each with one JSON line:
`["ok", template]`, `["env", exception name, args]` or `["error", why]`. It ends when its
input closes. Its models load once, on the first file that needs them."""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import sys
from typing import Any

from retalk import errors


def _terminated(signum: int, frame: Any) -> None:
    # Not an exception: it could land in an import's or a library's callback, and be printed
    # and ignored there. The links go, then the process, at once.
    from retalk.preflight.source import remove_own_links

    remove_own_links()
    os._exit(128 + signum)


def serve(content: bool) -> None:
    """Answer paths until the input closes (see the module docstring)."""
    # The answers get a descriptor of their own; anything a library prints goes to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides, and ends us
    signal.signal(signal.SIGTERM, _terminated)
    from retalk.preflight.many import template_of

    lines = iter(sys.stdin.buffer)
    first = next(lines, None)
    if first is None:
        return
    policy = pickle.loads(base64.b64decode(first))
    for line in lines:
        path = json.loads(line)
        answer: list[Any]
        try:
            answer = ["ok", template_of(path, content, policy)]
        except errors.ToolMissing as problem:
            answer = ["env", "ToolMissing", [problem.tool, problem.hint]]
        except errors.EnvironmentProblem as problem:
            answer = ["env", type(problem).__name__, [str(problem)]]
        except Exception as error:  # a bug: this file is reported, the others go on
            answer = ["error", f"{type(error).__name__}: {error}"]
        try:
            answers.write(json.dumps(answer).encode() + b"\n")
            answers.flush()
        except OSError:
            return


if __name__ == "__main__":
    serve(content="--no-content" not in sys.argv[1:])
