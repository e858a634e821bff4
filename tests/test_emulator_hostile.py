"""The emulator under attack: crowds, huge or lying bodies, forged or oversize uploads, idle and
trickling connections, and a client that tries to lift the overwrite protection. Real HTTP over
loopback; each test first shows its probe can see the failure it guards against."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retalk.client.core import SUBMIT_PATH
from retalk.emulator import Emulator, Faults

KEY = "sk-hostile-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
MIB = 1 << 20
BOUNDARY = "hostileboundary"


def _address(emulator: Emulator) -> tuple[str, int]:
    host, port = emulator.origin.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _answer(sock: socket.socket, wait: float) -> bytes:
    """What the server says until it closes or `wait` seconds pass."""
    sock.settimeout(wait)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except OSError:
        pass
    return got


def _form(fields: dict[str, str], content: bytes) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    file_head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return ("".join(parts) + file_head).encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def _upload_fields(emulator: Emulator, name: str = "a.bin") -> dict[str, str]:
    data = httpx.get(
        f"{emulator.base_url}/uploads", params={"action": "getPolicy"}, headers=AUTH
    ).json()["data"]
    return {
        "OSSAccessKeyId": data["oss_access_key_id"],
        "Signature": data["signature"],
        "policy": data["policy"],
        "key": f"{data['upload_dir']}/{name}",
        "x-oss-object-acl": data["x_oss_object_acl"],
        "x-oss-forbid-overwrite": data["x_oss_forbid_overwrite"],
        "success_action_status": "200",
    }


def _upload(
    emulator: Emulator, fields: dict[str, str], content: bytes, **headers: str
) -> httpx.Response:
    return httpx.post(
        emulator.origin + "/oss",
        content=_form(fields, content),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers},
    )


def _stored(emulator: Emulator) -> set[Path]:
    return {p for p in emulator.storage.rglob("*") if p.is_file()}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(api_key=KEY, idle_timeout=0.5, storage=tmp_path / "emulator") as em:
        yield em


# Crowds.
def _connects(address: tuple[str, int], count: int) -> list[socket.socket]:
    """Connections made, stopping at the first that the kernel does not complete in 0.5 s."""
    made: list[socket.socket] = []
    for _ in range(count):
        try:
            made.append(socket.create_connection(address, timeout=0.5))
        except OSError:
            break
    return made


def test_200_connections_wait_in_the_backlog(tmp_path: Path) -> None:
    small = socket.create_server(("127.0.0.1", 0), backlog=5)
    with small:
        held = _connects(small.getsockname(), 200)
        for sock in held:
            sock.close()
    assert len(held) < 20  # the probe sees a small backlog: connections beyond it hang
    emulator = Emulator(api_key=KEY, storage=tmp_path)  # listening, but accepting nothing yet
    assert emulator.backlog >= 200  # somaxconn does not cap it below
    held = _connects(_address(emulator), 200)
    for sock in held:
        sock.close()
    emulator.start()
    emulator.stop()
    assert len(held) == 200


def test_200_concurrent_clients_are_all_answered(tmp_path: Path) -> None:
    faults = Faults(slow=0.5)  # every request is held, so all 200 are open at once
    body = {"model": "videoretalk", "input": {"video_url": "oss://a", "audio_url": "oss://b"}}
    headers = {**AUTH, "X-DashScope-Async": "enable", "X-DashScope-OssResourceResolve": "enable"}
    start = threading.Barrier(200)
    answers: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    with (
        Emulator(
            api_key=KEY, pending_s=0, running_s=0, faults=faults, storage=tmp_path
        ) as emulator,
        httpx.Client(limits=httpx.Limits(max_connections=250), timeout=30) as http,
    ):

        def client(n: int) -> None:
            start.wait()
            if n % 2:
                r = http.post(emulator.base_url + SUBMIT_PATH, json=body, headers=headers)
            else:
                r = http.get(f"{emulator.base_url}/tasks/t{n}", headers=AUTH)
            with lock:
                answers.append(("submit" if n % 2 else "query", r.status_code, r.text))

        began = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - began
        with emulator.engine.lock:
            created = set(emulator.engine.tasks)
    assert took < 10, took  # served side by side: one after another would take 100 s
    assert emulator.peak_connections >= 150  # most were open at once
    assert len(answers) == 200 and {status for _, status, _ in answers} == {200}
    ids = {json.loads(text)["output"]["task_id"] for kind, _, text in answers if kind == "submit"}
    assert len(ids) == 100 and created == ids  # no task was made whose id was lost


def test_connections_beyond_the_cap_are_turned_away(tmp_path: Path) -> None:
    with Emulator(api_key=KEY, max_connections=3, storage=tmp_path) as emulator:
        held = [socket.create_connection(_address(emulator)) for _ in range(3)]
        try:
            for sock in held:
                sock.sendall(b"GET /api/v1/tasks/x HTTP/1.1\r\n")  # and never the rest
            time.sleep(0.2)
            assert emulator.peak_connections == 3  # the three hold their threads
            with socket.create_connection(_address(emulator)) as extra:
                answer = _answer(extra, 2)
            assert _status(answer) == 503 and b"ServiceUnavailable" in answer
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 3
        while emulator.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{emulator.base_url}/tasks/x", headers=AUTH).status_code == 200


def test_a_submit_whose_client_hung_up_makes_no_task(emulator: Emulator) -> None:
    emulator.faults.slow = 0.2  # the hang-up reaches the server before it decides
    data = json.dumps(
        {"model": "videoretalk", "input": {"video_url": "oss://a", "audio_url": "oss://b"}}
    ).encode()
    headers = {
        **AUTH,
        "X-DashScope-Async": "enable",
        "X-DashScope-OssResourceResolve": "enable",
        "Content-Length": str(len(data)),
    }
    submit = _request("POST", "/api/v1" + SUBMIT_PATH, headers, data)
    with socket.create_connection(_address(emulator)) as stays:
        stays.sendall(submit)
        assert _status(_answer(stays, 2)) == 200 and len(emulator.engine.tasks) == 1
    with socket.create_connection(_address(emulator)) as leaves:
        leaves.sendall(submit)
        leaves.shutdown(socket.SHUT_WR)
        assert _answer(leaves, 2) == b""
    assert len(emulator.engine.tasks) == 1


# Bodies.
_SERVE = """
import os, sys
from pathlib import Path
from retalk.emulator import Emulator
emulator = Emulator(api_key=os.environ["RETALK_TEST_KEY"], storage=Path(sys.argv[1])).start()
print(emulator.origin, flush=True)
sys.stdin.read()
emulator.stop()
"""


def _memory_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = (line.split() for line in status if line.startswith(("VmHWM", "VmRSS")))
    return {f[0].rstrip(":"): int(f[1]) for f in fields}


def _flood(address: tuple[str, int], head: bytes, total: int) -> tuple[int, int]:
    """Send `head` then up to `total` bytes, whatever the server says, as a hostile client
    would; the status it answered (0: none) and the bytes it took."""
    chunk, sent, answer = bytes(MIB), 0, b""
    with socket.create_connection(address) as sock:
        sock.sendall(head)
        sock.settimeout(2)
        while sent < total:
            if not answer and select.select([sock], [], [], 0)[0]:
                answer = _answer(sock, 0.2)
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        if not answer:
            answer = _answer(sock, 2)
    return _status(answer), sent


def test_huge_or_lying_bodies_are_refused_unread(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(tmp_path / "emulator")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "RETALK_TEST_KEY": KEY},
    )
    try:
        assert server.stdout is not None
        host, port = server.stdout.readline().strip().removeprefix("http://").rsplit(":", 1)
        address = (host, int(port))
        before = _memory_kb(server.pid)
        submit = "/api/v1" + SUBMIT_PATH
        multipart = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        attacks = {
            "no key, negative length": _request("POST", submit, {"Content-Length": "-1"}),
            "no key, huge length": _request("POST", submit, {"Content-Length": str(10**12)}),
            "key, negative length": _request("POST", submit, {**AUTH, "Content-Length": "-1"}),
            "key, huge length": _request("POST", submit, {**AUTH, "Content-Length": str(10**9)}),
            "key, chunked": _request("POST", submit, {**AUTH, "Transfer-Encoding": "chunked"}),
            "upload, huge length": _request(
                "POST", "/oss", {**multipart, "Content-Length": str(10**12)}
            ),
        }
        outcomes = {name: _flood(address, head, 300 * MIB) for name, head in attacks.items()}
        after = _memory_kb(server.pid)
    finally:
        server.communicate("", timeout=10)
    statuses = {name: status for name, (status, _) in outcomes.items()}
    assert statuses == {
        "no key, negative length": 401,
        "no key, huge length": 401,
        "key, negative length": 400,
        "key, huge length": 413,
        "key, chunked": 411,
        "upload, huge length": 400,
    }
    fed = sum(sent for _, sent in outcomes.values())
    assert fed >= 50 * MIB  # the server was fed, and threw the bytes away
    growth_mb = (after["VmHWM"] - before["VmHWM"]) / 1024
    assert growth_mb < 100, (before, after, outcomes)


def test_a_refused_client_is_not_told_to_continue(emulator: Emulator) -> None:
    expect = {"Expect": "100-continue", "Content-Length": "10"}
    with socket.create_connection(_address(emulator)) as sock:
        sock.sendall(_request("POST", "/api/v1/tasks/x/cancel", {**AUTH, **expect}))
        said = sock.recv(1024)
        assert said.startswith(b"HTTP/1.1 100")  # the probe sees a `100 Continue`
        sock.sendall(b"0123456789")
        assert _status(_answer(sock, 2).removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")) == 400
    with socket.create_connection(_address(emulator)) as sock:
        sock.sendall(_request("POST", "/api/v1/tasks/x/cancel", expect))
        assert _status(_answer(sock, 2)) == 401


def test_list_parameters_that_are_no_numbers_are_refused(emulator: Emulator) -> None:
    listed = httpx.get(f"{emulator.base_url}/tasks", params={"page_size": "2"}, headers=AUTH)
    assert listed.status_code == 200 and listed.json()["page_size"] == 2
    wrong = httpx.get(f"{emulator.base_url}/tasks", params={"page_no": "x"}, headers=AUTH)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "InvalidParameter")


# Uploads.
def _send_head_only(emulator: Emulator, form_head: bytes, declared: int) -> int:
    """Send an upload's headers and fields, declaring `declared` bytes of body, and none of
    its file: the answer (0: none within 3 s) shows it was judged before the file came."""
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(declared),
    }
    with socket.create_connection(_address(emulator)) as sock:
        sock.sendall(_request("POST", "/oss", headers, form_head))
        return _status(_answer(sock, 3))


def test_forged_or_oversize_uploads_are_refused_before_a_byte_is_stored(tmp_path: Path) -> None:
    with Emulator(
        api_key=KEY, max_upload_mb=1, idle_timeout=10, storage=tmp_path / "emulator"
    ) as emulator:
        good = _upload(emulator, _upload_fields(emulator), b"first")
        assert good.status_code == 200 and len(_stored(emulator)) == 1  # the probe sees files
        stored = _stored(emulator)
        forged = {**_upload_fields(emulator), "Signature": "AAAA"}
        head = _form(forged, b"").split(b"\r\n--" + BOUNDARY.encode() + b"--")[0]
        assert _send_head_only(emulator, head, 900 * 1024) == 403  # the file never comes
        honest = _upload_fields(emulator)
        head = _form(honest, b"").split(b"\r\n--" + BOUNDARY.encode() + b"--")[0]
        assert _send_head_only(emulator, head, 50 * MIB) == 400  # beyond max_upload_mb
        assert _send_head_only(emulator, head, 10**12) == 400  # beyond any upload
        forged_small = _upload(emulator, forged, b"x" * 1000)
        assert forged_small.status_code == 403 and "<Code>AccessDenied</Code>" in forged_small.text
        assert _stored(emulator) == stored


def test_overwrite_is_governed_by_the_signed_policy(emulator: Emulator) -> None:
    fields = _upload_fields(emulator)
    assert _upload(emulator, fields, b"original").status_code == 200
    target = emulator.storage / "oss" / fields["key"]
    assert target.read_bytes() == b"original"
    lifted = _upload(emulator, {**fields, "x-oss-forbid-overwrite": "false"}, b"forged")
    assert lifted.status_code == 403 and "Policy Condition failed" in lifted.text
    by_header = _upload(emulator, fields, b"forged", **{"x-oss-forbid-overwrite": "false"})
    assert by_header.status_code == 409 and "FileAlreadyExists" in by_header.text
    other = {**fields, "key": fields["key"] + ".2"}
    assert _upload(emulator, other, b"forged").status_code == 200  # the same policy still works
    assert target.read_bytes() == b"original"


def test_keys_that_escape_or_break_the_store_are_refused(emulator: Emulator) -> None:
    fields = _upload_fields(emulator)
    folder = fields["key"].rsplit("/", 1)[0]
    assert _upload(emulator, fields, b"fine").status_code == 200  # the policy is good
    stored = _stored(emulator)
    for key in (
        f"{folder}/../../escape.bin",
        f"{folder}//a.bin",
        f"{folder}/a\x01.bin",
        f"{folder}/./a.bin",
        f"{folder}/a\x7f.bin",
        f"{folder}/{'a' * 300}.bin",
    ):
        refused = _upload(emulator, {**fields, "key": key}, b"bad")
        assert refused.status_code == 400 and "InvalidObjectName" in refused.text, key
    assert _stored(emulator) == stored


# Idle connections.
def test_a_silent_connection_is_dropped_after_the_idle_timeout(emulator: Emulator) -> None:
    with socket.create_connection(_address(emulator)) as sock:
        began = time.monotonic()
        assert _answer(sock, 5) == b""
        waited = time.monotonic() - began
    assert 0.4 <= waited < 3, waited
    with socket.create_connection(_address(emulator)) as sock:
        sock.sendall(_request("GET", "/api/v1/tasks/x", AUTH))
        began = time.monotonic()
        answer = _answer(sock, 5)  # answered, kept open, then dropped once idle
        waited = time.monotonic() - began
    assert _status(answer) == 200
    assert 0.4 <= waited < 3, waited


def _trickle(emulator: Emulator, data: bytes, every: float) -> tuple[int, float]:
    """Send `data` a byte at a time; how many bytes went before the server hung up, and when."""
    began = time.monotonic()
    with socket.create_connection(_address(emulator)) as sock:
        for sent, byte in enumerate(data):
            if select.select([sock], [], [], every)[0] and not sock.recv(1024):
                return sent, time.monotonic() - began
            sock.sendall(bytes([byte]))
    return len(data), time.monotonic() - began


def test_a_slow_steady_upload_outlives_the_idle_timeout(emulator: Emulator) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB, sent 128 KiB every 0.1 s
    body = _form(_upload_fields(emulator), content)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(body)),
    }
    began = time.monotonic()
    with socket.create_connection(_address(emulator)) as sock:
        sock.sendall(_request("POST", "/oss", headers))
        for start in range(0, len(body), 128 * 1024):
            time.sleep(0.1)
            sock.sendall(body[start : start + 128 * 1024])
        answer = _answer(sock, 2)
    assert time.monotonic() - began > 2 * emulator.idle_timeout  # longer than one timeout
    assert _status(answer) == 200
    assert [p.read_bytes() for p in (emulator.storage / "oss").rglob("*.bin")] == [content]


def test_trickling_clients_are_dropped(emulator: Emulator) -> None:
    head = _request("GET", "/api/v1/tasks/x", AUTH)
    sent, took = _trickle(emulator, head, 0.05)
    assert sent < len(head) and 0.4 <= took < 2, (sent, took)  # fed all along, still dropped
    body = _request("POST", "/api/v1/tasks/x/cancel", {**AUTH, "Content-Length": "200"})
    with socket.create_connection(_address(emulator)) as sock:
        sock.sendall(body)
        began = time.monotonic()
        for _ in range(40):
            if select.select([sock], [], [], 0.05)[0]:
                break
            try:
                sock.sendall(b"x")
            except OSError:
                break
        answer, took = _answer(sock, 1), time.monotonic() - began
    assert answer == b"" and 0.4 <= took < 2, (answer, took)


def test_malformed_requests_get_a_4xx_not_a_500(emulator: Emulator) -> None:
    """A body nested past the parser's depth, or not an object; a key of non-ASCII bytes; an
    object under a name that is an object already: each a refusal, none an InternalError."""
    submit = emulator.base_url + SUBMIT_PATH
    headers = {**AUTH, "X-DashScope-Async": "enable", "Content-Type": "application/json"}
    for body in (
        b"[" * 100_000,
        b"[1, 2]",
        b'"text"',
        b'{"model": "videoretalk", "input": "x"}',
        b'{"model": "videoretalk", "input": {}, "parameters": []}',
        b'{"model": "videoretalk", "input": {"video_url": 5, "audio_url": "http://a/b.wav"}}',
        b'{"model": "videoretalk", "input": {"video_url": "http://a/v.mp4", "audio_url": '
        b'"http://a/b.wav", "ref_image_url": 7}}',
    ):
        answer = httpx.post(submit, content=body, headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (400, "InvalidParameter"), body[:9]
    with socket.create_connection(_address(emulator)) as sock:
        request = _request("GET", "/api/v1/tasks/t-1", {})
        sock.sendall(request.replace(b"Host:", "Authorization: Bearer sk-é\r\nHost:".encode()))
        assert _status(_answer(sock, 2)) == 401
    fields = _upload_fields(emulator)
    assert _upload(emulator, fields, b"a file").status_code == 200  # `…/a.bin` is an object
    under = _upload(emulator, {**fields, "key": fields["key"] + "/b.bin"}, b"x")
    assert under.status_code == 409 and "FileAlreadyExists" in under.text
