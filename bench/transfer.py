"""Upload and download of a 300 MB file through the emulator: throughput, and the client
process's peak memory (goal: under 100 MB, i.e. streamed, never held whole).

The emulator runs in a process of its own; the client runs in a fresh process per direction,
whose peak resident memory (ru_maxrss) is read when it ends. Run with `make bench-transfer`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

SIZE = 300 * 1024 * 1024
KEY = "sk-bench"

CLIENT = r"""
import os, resource, sys, time
from retalk.client import Client
mode, base, path = sys.argv[1:4]
with Client(api_key=os.environ["KEY"], url=base) as client:
    start = time.perf_counter()
    if mode == "upload":
        url = client.upload(path)
    else:
        client.download(sys.argv[4], path)
    seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{seconds:.3f} {peak:.1f}")
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "big.mp4"
        with open(big, "wb") as f:  # real bytes, not a sparse file: the disk is read for real
            block = os.urandom(1 << 20)
            for _ in range(SIZE >> 20):
                f.write(block)
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, folder], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        try:
            env = {**os.environ, "KEY": KEY}
            up = subprocess.run(
                [sys.executable, "-c", CLIENT, "upload", base, str(big)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            url = f"{base.rsplit('/api/v1', 1)[0]}/plain/big.mp4"
            copy = str(Path(folder) / "copy.mp4")
            down = subprocess.run(
                [sys.executable, "-c", CLIENT, "download", base, copy, url],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait()
        print(f"{'direction':10} {'seconds':>8} {'MB/s':>8} {'peak RSS':>9}  goal")
        for name, result in (("upload", up), ("download", down)):
            seconds, peak = map(float, result.stdout.split())
            verdict = "met" if peak < 100 else "MISSED"
            rate = SIZE / 1e6 / seconds
            print(f"{name:10} {seconds:8.2f} {rate:8.0f} {peak:7.0f}MB  < 100 MB {verdict}")


# The emulator, plus a plain file route to download the 300 MB file through the same server
# code path (Range, streaming) without a task having to make it.
_SERVER = r"""
import sys
from pathlib import Path
from retalk.emulator import Emulator
from retalk.emulator import server as s

folder = Path(sys.argv[1])

class Plain(s._Handler):
    def _get(self):
        if self.path.startswith("/plain/"):
            self._send_file("plain", folder / self.path.rsplit("/", 1)[-1])
        else:
            super()._get()

em = Emulator(api_key="sk-bench", storage=folder / "emulator")
em._server.RequestHandlerClass = type("H", (Plain,), {"service": em})
print(em.base_url, flush=True)
em.serve_forever()
"""

if __name__ == "__main__":
    main()
