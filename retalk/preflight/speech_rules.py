"""The speech rules: pure functions from an audio file's `SpeechScan` to findings."""

from __future__ import annotations

from collections.abc import Iterator

from retalk import limits
from retalk.findings import Finding, finding
from retalk.policy import Policy
from retalk.preflight.hints import shell_path
from retalk.preflight.media import Media


def unmeasured(media: Media, policy: Policy) -> Iterator[Finding]:
    """The speech analysis ran out of time: nothing of the speech rules was checked."""
    if media.speech is None and media.unsettled is not None and media.open_error is None:
        yield finding(
            "File.Unmeasured",
            media.path,
            f"{media.unsettled}: speech, loudness, noise and clipping were not measured",
            hint="check it again on a less busy machine",
        )


def no_speech(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = media.speech
    if scan is None or not _too_little(media):
        return
    yield finding(
        "Audio.NoSpeech",
        media.path,
        f"{scan.speech_seconds:.1f} s of speech in {_heard(media)}: silence, music or "
        "noise only; the service moves the lips to a voice",
        actual=f"{scan.speech_share * 100:.0f}% speech",
        expected="clear human speech",
        hint="check that this is the speech track of the job",
    )


def _heard(media: Media) -> str:
    """`12.0 s`, or `the first 125.0 s of 1500.0 s` when only the start was analysed."""
    from retalk.preflight.audio import duration_of
    from retalk.preflight.visuals import partial

    assert media.speech is not None
    heard = media.speech.duration
    whole = duration_of(media)[0]
    if whole is not None and partial(heard) and whole > heard:
        return f"the first {heard:.1f} s of {whole:.1f} s"
    return f"{heard:.1f} s"


def _too_little(media: Media) -> bool:
    scan = media.speech
    if scan is None:
        return False
    # Half a second of speech is little in a long file, and all there is in a short one.
    least = min(limits.SPEECH_MIN_S, scan.duration / 2)
    return scan.speech_seconds < least or scan.speech_share < limits.SPEECH_MIN_SHARE


def quiet(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = media.speech
    if scan is None or _too_little(media):
        return
    if scan.loudness is not None and scan.loudness >= limits.QUIET_LUFS:
        return
    level = "silent" if scan.loudness is None else f"{scan.loudness:.1f} LUFS"
    yield finding(
        "Audio.Quiet",
        media.path,
        f"integrated loudness {level}, under {limits.QUIET_LUFS:g} LUFS: the service wants loud "
        "speech (spoken word is usually -16 to -23 LUFS)",
        actual=level,
        expected=f"at least {limits.QUIET_LUFS:g} LUFS",
        hint=f"retalk fix {shell_path(media.path)}",
    )


def noisy(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = media.speech
    if scan is None or scan.snr is None or _too_little(media) or scan.snr >= limits.NOISY_SNR_DB:
        return
    yield finding(
        "Audio.Noisy",
        media.path,
        f"speech stands only {scan.snr:.0f} dB above the background (under "
        f"{limits.NOISY_SNR_DB:g} dB): noise or music competes with the voice",
        actual=f"{scan.snr:.0f} dB",
        expected=f"at least {limits.NOISY_SNR_DB:g} dB",
        hint="use the clean voice track, or remove the background (e.g. ffmpeg -af afftdn)",
    )


def clipped(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = media.speech
    if scan is None or scan.clipped < limits.CLIPPED_SHARE:
        return
    yield finding(
        "Audio.Clipped",
        media.path,
        f"{scan.clipped * 100:.2g}% of the samples sit at full scale: the voice is distorted",
        actual=f"{scan.clipped * 100:.2g}% clipped",
        expected=f"under {limits.CLIPPED_SHARE * 100:g}%",
        hint="record or export it again at a lower level: clipping cannot be undone",
    )


def silences(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = media.speech
    if scan is None or not scan.pauses or _too_little(media):
        return
    ranges = ", ".join(f"{_n(a)}-{_n(b)} s" for a, b in scan.pauses)
    yield finding(
        "Audio.Silences",
        media.path,
        f"no speech at {ranges}: the service keeps the mouth closed there",
        actual=f"{sum(b - a for a, b in scan.pauses):.1f} s without speech",
        at=scan.pauses[0][0],
    )


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
