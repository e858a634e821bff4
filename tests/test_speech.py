"""Speech and the job as a whole, with the real VAD and ffmpeg's meters, on espeak-ng's voice
and on sounds that are not speech (tones, pink noise, silence), made at test time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import retalk
from retalk.codes import CODES
from retalk.preflight.job import Plan

SPEECH_CODES = {c for c in CODES if c.startswith(("Audio.", "Job."))}

AUDIO = [
    ("speech.wav", ()),
    ("speech.mp3", ()),
    ("speech-5.1.wav", ()),  # the silent channels sit at their (zero) peak: not clipping
    ("speech-pause.wav", ("Audio.Silences",)),
    ("quiet-speech.wav", ("Audio.Quiet",)),
    ("noisy-speech.wav", ("Audio.Noisy",)),
    ("music-speech.wav", ("Audio.Noisy",)),
    ("clipped-speech.wav", ("Audio.Clipped",)),
    ("silence.wav", ("Audio.NoSpeech",)),
    ("music.wav", ("Audio.NoSpeech",)),
    ("pink-noise.wav", ("Audio.NoSpeech",)),
]

# (video, audio, video_extension, codes): face.mp4 lasts 3 s, face-9s.mp4 9 s, half-face.mp4
# 4 s with the face in its first half; speech.wav lasts 7.5 s.
JOBS = [
    ("face.mp4", "speech.wav", False, ("Job.Truncated",)),
    ("face-9s.mp4", "speech.wav", False, ("Job.Truncated",)),
    ("face-9s.mp4", "speech.wav", True, ("Job.Truncated",)),  # extension only lengthens
    ("face.mp4", "speech.wav", True, ("Job.Extended",)),
    ("half-face.mp4", "speech.wav", True, ("Job.Extended", "Job.SpeechWithoutFace")),
]


def _codes(report: retalk.Report) -> list[str]:
    return sorted(c for c in report.codes if c in SPEECH_CODES)


@pytest.mark.parametrize(("name", "expected"), AUDIO)
def test_audio_speech(media: Path, name: str, expected: tuple[str, ...]) -> None:
    report = retalk.check_audio(media / name)
    assert _codes(report) == sorted(expected), report.findings
    assert report.ok


def test_a_few_words_are_speech_and_unmeasured_noise(media: Path) -> None:
    report = retalk.check_audio(media / "speech-0.4s.wav")
    assert sorted(report.codes) == ["InvalidFile.Duration"]  # not NoSpeech, not Noisy
    assert report.inputs[0].facts["speech"]["snr_db"] is None


@pytest.mark.parametrize(("video", "audio", "extension", "expected"), JOBS)
def test_job(
    media: Path, video: str, audio: str, extension: bool, expected: tuple[str, ...]
) -> None:
    report = retalk.check_job(video=media / video, audio=media / audio, video_extension=extension)
    assert _codes(report) == sorted(expected), report.findings


def test_every_speech_and_job_code_has_a_case() -> None:
    produced = {c for _, codes in AUDIO for c in codes} | {c for *_, codes in JOBS for c in codes}
    assert produced == SPEECH_CODES


def test_truncation_says_who_loses_what(media: Path) -> None:
    long_audio = retalk.check_job(video=media / "face.mp4", audio=media / "speech.wav")
    (cut,) = [f for f in long_audio.findings if f.code == "Job.Truncated"]
    assert "the output will be 3 s, the video's length: the audio's last 4.5 s" in cut.message
    long_video = retalk.check_job(video=media / "face-9s.mp4", audio=media / "speech.wav")
    (cut,) = [f for f in long_video.findings if f.code == "Job.Truncated"]
    assert "the output will be 7.5 s, the audio's length: the video's last 1.5 s" in cut.message


def test_job_facts(media: Path) -> None:
    report = retalk.check_job(
        video=media / "face.mp4", audio=media / "speech.wav", video_extension=True
    )
    job = report.job
    assert job is not None
    assert job["parameters"] == {"video_extension": True}
    assert job["output_duration"] == job["billable_seconds"] == pytest.approx(7.54, abs=0.05)
    assert job["video_passes"] == 3
    (extended,) = [f for f in report.findings if f.code == "Job.Extended"]
    assert "3 passes" in extended.message


def test_speech_without_face_follows_the_video_back_and_forth(media: Path) -> None:
    report = retalk.check_job(
        video=media / "half-face.mp4", audio=media / "speech.wav", video_extension=True
    )
    (finding,) = [f for f in report.findings if f.code == "Job.SpeechWithoutFace"]
    # The face is in the video's first 2 s: the output shows it at 0-2 s (forward) and again
    # at 6-7.5 s (the backward pass reaches the start): the voice at 2-6 s has no face.
    assert finding.at == pytest.approx(2.0, abs=0.3)
    assert "-6 s" in finding.message or "-5.9 s" in finding.message or "-6.1 s" in finding.message


@pytest.mark.parametrize(
    ("t", "shown"), [(0.0, 0.0), (1.0, 1.0), (4.0, 4.0), (5.0, 3.0), (8.0, 0.0), (9.0, 1.0)]
)
def test_the_extended_video_plays_back_and_forth(t: float, shown: float) -> None:
    plan = Plan(video=4.0, audio=10.0, extension=True)
    assert plan.video_time(t) == pytest.approx(shown)
    assert plan.output == 10.0 and plan.passes == 3


def test_speech_facts_in_json(run, media: Path) -> None:
    result = run(
        "check", "--format", "json", "--video", "face.mp4", "--audio", "speech.mp3", cwd=media
    )
    data = json.loads(result.stdout)
    speech = data["inputs"][1]["facts"]["speech"]
    assert set(speech) == {
        "speech_seconds", "speech_share", "speech", "pauses", "loudness_lufs",
        "true_peak_dbfs", "clipped_share", "snr_db",
    }  # fmt: skip
    assert speech["speech_share"] > 0.8
    assert -25 < speech["loudness_lufs"] < -16
    assert data["job"]["parameters"] == {"video_extension": False}
    assert (
        "job: output 3 s, billed 3 s"
        in run("check", "--video", "face.mp4", "--audio", "speech.mp3", cwd=media).stdout
    )


def test_no_content_skips_speech(media: Path) -> None:
    report = retalk.check_audio(media / "silence.wav", content=False)
    assert report.codes == ()
    assert "speech" not in report.inputs[0].facts
