"""The failure paths of both clients, sync and async, against the emulator over loopback: reads
retried through throttling and server errors, a throttled submit sent again and a failed one
never, a dropped download resumed onto the bytes held, an expired link, a wrong key known from
one cheap call. Each test first shows that the mechanism was engaged (the emulator's counters,
its record of result requests), then that the result is right. (The answers the emulator cannot
give, a lost submit answer among them, are in tests/test_hostile_server.py.)"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from retalk.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    RateLimited,
    ResultExpired,
    ServerError,
    TaskStatus,
    Timing,
)
from retalk.emulator import Emulator, Faults

KEY = "sk-failures-SECRET-0d4e"
FAST = Timing(poll_interval=0.05, poll_cap=0.2, backoff=0.01, backoff_cap=0.05)
_T = TypeVar("_T")
both = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])


async def _do(value: _T | Coroutine[Any, Any, _T]) -> _T:
    """The value of a sync client's call, or of an async one's, awaited."""
    if inspect.isawaitable(value):
        return await value
    return value  # type: ignore[return-value]


def _with_client(
    em: Emulator,
    asynchronous: bool,
    flow: Callable[[Any], Coroutine[Any, Any, _T]],
    key: str = KEY,
) -> _T:
    """`flow` run with a Client or an AsyncClient of the emulator: one flow, written with
    `await _do(client.call(...))`, tests both."""

    async def run() -> _T:
        if asynchronous:
            async with AsyncClient(api_key=key, url=em.base_url, timing=FAST) as client:
                return await flow(client)
        with Client(api_key=key, url=em.base_url, timing=FAST) as client:
            return await flow(client)

    return asyncio.run(run())


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "em"


@both
def test_reads_are_retried_through_throttling_and_server_errors(
    storage: Path, asynchronous: bool
) -> None:
    faults = Faults(throttle_every=2, error_every=3)
    with Emulator(api_key=KEY, pending_s=0, running_s=0, faults=faults, storage=storage) as em:

        async def flow(client: Any) -> list[TaskStatus]:
            found = [(await _do(client.get("no-such-task"))).status for _ in range(6)]
            assert (await _do(client.list())).total == 0
            return found

        statuses = _with_client(em, asynchronous, flow)
    assert statuses == [TaskStatus.UNKNOWN] * 6
    assert faults._count > 7  # 7 calls: some were answered 429 or 500, and asked again


@both
def test_a_throttled_submit_is_sent_again_and_a_failed_one_is_not(
    storage: Path, asynchronous: bool
) -> None:
    urls = ("http://127.0.0.1:9/v.mp4", "http://127.0.0.1:9/a.wav")
    with Emulator(api_key=KEY, faults=Faults(throttle_every=2), storage=storage) as em:

        async def throttled_once(client: Any) -> str:
            await _do(client.get("warm-up"))  # request 1; the submit is 2 (throttled), then 3
            return str((await _do(client.submit(*urls))).task_id)

        task_id = _with_client(em, asynchronous, throttled_once)
        assert em.faults._count == 3 and list(em.engine.tasks) == [task_id]  # one task

        em.faults = Faults(throttle_every=1)

        async def always_throttled(client: Any) -> None:
            await _do(client.submit(*urls))

        with pytest.raises(RateLimited):
            _with_client(em, asynchronous, always_throttled)
        assert em.faults._count == 1 + FAST.retries and len(em.engine.tasks) == 1

        em.faults = Faults(error_every=1)
        with pytest.raises(ServerError):
            _with_client(em, asynchronous, always_throttled)
        assert em.faults._count == 1  # a 500 may follow a task made: sent once
        assert len(em.engine.tasks) == 1


@both
def test_a_dropped_download_resumes_onto_the_bytes_held(
    media: Path, tmp_path: Path, asynchronous: bool
) -> None:
    faults = Faults(drop_download_after=100_000)
    with Emulator(
        api_key=KEY, pending_s=0, running_s=0, faults=faults, storage=tmp_path / "em"
    ) as em:
        seen: list[int] = []

        async def flow(client: Any) -> Path:
            video = await _do(client.upload(media / "face.mp4"))
            audio = await _do(client.upload(media / "speech.wav"))
            done = await _do(client.wait((await _do(client.submit(video, audio))).task_id))
            return await _do(
                client.download(done, tmp_path / "out.mp4", lambda n, total: seen.append(n))
            )

        saved = _with_client(em, asynchronous, flow)
        (result,) = (tmp_path / "em" / "results").rglob("result.mp4")
        # Engaged: the first answer was cut at 100,000 bytes; the second asked for the rest
        # only, on condition that the file is the same, and got it (206).
        first, second = em.result_requests
        assert (first.range, first.status) == (None, 200)
        assert 0 < second.start <= 100_000 and second.range == f"bytes={second.start}-"
        assert second.if_range is not None and second.status == 206
        assert min(seen) <= 100_000 < max(seen) == result.stat().st_size
        # Right: the bytes are the stored result's, whole, under the target's name only.
        assert saved.read_bytes() == result.read_bytes()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["em", "out.mp4"]


@both
def test_an_expired_link_is_result_expired(media: Path, tmp_path: Path, asynchronous: bool) -> None:
    with Emulator(
        api_key=KEY, pending_s=0, running_s=0, result_lifetime=1, storage=tmp_path / "em"
    ) as em:

        async def flow(client: Any) -> None:
            video = await _do(client.upload(media / "face.mp4"))
            audio = await _do(client.upload(media / "speech.wav"))
            done = await _do(client.wait((await _do(client.submit(video, audio))).task_id))
            expires = int(done.video_url.split("Expires=")[1].split("&")[0])
            await asyncio.sleep(max(0.0, expires - time.time()) + 0.1)
            await _do(client.download(done, tmp_path / "late.mp4"))

        with pytest.raises(ResultExpired) as expired:
            _with_client(em, asynchronous, flow)
        assert expired.value.expired_at is not None
        assert em.result_requests == []  # known from the link's Expires=: nothing asked
        assert sorted(p.name for p in tmp_path.iterdir()) == ["em"]


@both
def test_a_wrong_key_is_known_from_one_cheap_call(storage: Path, asynchronous: bool) -> None:
    faults = Faults()  # counts the API requests
    with Emulator(api_key=KEY, faults=faults, storage=storage) as em:

        async def flow(client: Any) -> None:
            await _do(client.check_access())

        _with_client(em, asynchronous, flow)  # the right key: no error
        assert faults._count == 1
        with pytest.raises(AuthenticationError) as refused:
            _with_client(em, asynchronous, flow, key="sk-wrong")
        assert faults._count == 2  # one request each: a 401 is not retried
        assert refused.value.status == 401 and refused.value.code == "InvalidApiKey"
        assert "sk-wrong" not in str(refused.value)
