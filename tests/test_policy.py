"""The project's policy: loading it (pyproject.toml's [tool.retalk], .retalk.toml, --config),
its mistakes, precedence, selection as flake8 does it, per-path ignores, stricter limits on
real media through the real command, `retalk config`, and the rules' registry."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

import retalk
from retalk.codes import CODES, Severity
from retalk.policy import SERVICE, load_policy
from retalk.preflight.check import inspect, role_of
from retalk.preflight.job import Job, plan_of
from retalk.preflight.rules import FILE_RULES, JOB_RULES, declared_codes, rules_for

EXAMPLE = """
[tool.retalk]
ignore = ["Audio.Silences"]
strict = ["Face.Turned"]

[tool.retalk.video]
max-side = 1920
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _config_json(run, cwd: Path, *args: str) -> dict:
    result = run("config", "--format", "json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- loading -------------------------------------------------------------------------------


def test_no_config_is_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    policy = load_policy()
    assert policy == SERVICE and policy.config is None
    assert policy.source("video.max-side") == "default"


def test_the_nearest_config_upward_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    _write(tmp_path, "pyproject.toml", '[tool.retalk]\nignore = ["File."]\n')
    # A pyproject.toml without [tool.retalk] is passed over, as ruff does.
    _write(tmp_path / "a" / "b", "pyproject.toml", '[project]\nname = "x"\n')
    _write(tmp_path / "a", "pyproject.toml", '[tool.retalk]\nignore = ["Face."]\n')
    monkeypatch.chdir(deep)
    policy = load_policy()
    assert policy.ignore == ("Face.",)
    assert policy.root == str(tmp_path / "a")
    assert policy.source("ignore") == "../../pyproject.toml [tool.retalk]"
    # In one folder, .retalk.toml wins over pyproject.toml (as .ruff.toml does).
    _write(tmp_path / "a", ".retalk.toml", 'ignore = ["Audio."]\n')
    assert load_policy().ignore == ("Audio.",)
    assert load_policy().source("ignore") == "../../.retalk.toml"


def test_config_option_reads_the_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "pyproject.toml", '[tool.retalk]\nignore = ["Face."]\n')
    other = _write(
        tmp_path / "elsewhere", "policy.toml", "face-samples = 8\n[audio]\nmax-duration = 60\n"
    )
    monkeypatch.chdir(tmp_path)
    policy = load_policy(other)
    assert policy.ignore == () and policy.face_samples == 8
    assert policy.audio.duration.high == 60 and policy.audio.duration.low == 2
    assert policy.source("audio.max-duration") == f"--config {other}"
    assert policy.root == str(other.parent)


def test_limits_are_built_from_the_services(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        ".retalk.toml",
        """
        [video]
        max-size-mb = 100
        min-duration = 3
        max-duration = 60.5
        min-fps = 24
        max-fps = 30
        min-side = 720
        max-side = 1920
        [audio]
        max-size-mb = 5
        [ref]
        max-aspect = 1.5
        max-side = 2048
        """,
    )
    policy = load_policy(config)
    video = policy.video
    assert (video.max_mb, video.duration.low, video.duration.high) == (100, 3, 60.5)
    assert (video.fps.low, video.fps.high, video.side.low, video.side.high) == (24, 30, 720, 1920)
    assert video.codecs == retalk.limits.VIDEO.codecs and video.field == "input.video_url"
    assert policy.audio.max_mb == 5 and policy.audio.duration == retalk.limits.AUDIO.duration
    assert (policy.image.max_aspect, policy.image.max_side) == (1.5, 2048)
    assert policy.image.max_mb == retalk.limits.IMAGE.max_mb


# (file name, its text, the one line `retalk config` prints on stderr)
ERRORS = [
    (
        "pyproject.toml",
        "[tool.retalk.video]\nmax-duration = 150\n",
        "pyproject.toml [tool.retalk.video] max-duration = 150: the service takes at most 120 s; "
        "a policy can only be stricter",
    ),
    (
        ".retalk.toml",
        "[video]\nmin-fps = 10\n",
        ".retalk.toml [video] min-fps = 10: the service takes at least 15 fps; a policy can only "
        "be stricter",
    ),
    (
        ".retalk.toml",
        "[ref]\nmax-aspect = 3\n",
        ".retalk.toml [ref] max-aspect = 3: the service takes at most 2:1; a policy can only be "
        "stricter",
    ),
    (
        ".retalk.toml",
        "[audio]\nmax-size-mb = 31\n",
        ".retalk.toml [audio] max-size-mb = 31: the service takes at most 30 MB; a policy can "
        "only be stricter",
    ),
    (".retalk.toml", "selct = []\n", ".retalk.toml: unknown key 'selct'; did you mean select?"),
    (
        "pyproject.toml",
        "[tool.retalk.video]\nmax-sides = 1900\n",
        "pyproject.toml [tool.retalk.video]: unknown key 'max-sides'; did you mean max-side?",
    ),
    (
        ".retalk.toml",
        "[tool.retalk]\nselect = []\n",
        ".retalk.toml: unknown key 'tool' (known: select, ignore, strict, per-path-ignores, "
        "face-samples, video, audio, ref)",
    ),
    (
        ".retalk.toml",
        '[video]\nmax-side = "1920"\n',
        '.retalk.toml [video] max-side: must be a whole number, not "1920"',
    ),
    (
        ".retalk.toml",
        "[video]\nmax-side = 1919.5\n",
        ".retalk.toml [video] max-side: must be a whole number, not 1919.5",
    ),
    (
        ".retalk.toml",
        "[video]\nmax-fps = true\n",
        ".retalk.toml [video] max-fps: must be a number, not true",
    ),
    (
        ".retalk.toml",
        "[video]\nmin-duration = 50\nmax-duration = 40\n",
        ".retalk.toml [video] min-duration = 50 is above max-duration = 40",
    ),
    (
        ".retalk.toml",
        "[video]\nmin-side = 2000\nmax-side = 1920\n",
        ".retalk.toml [video] min-side = 2000 is above max-side = 1920",
    ),
    (".retalk.toml", "video = 3\n", ".retalk.toml [video]: must be a table, not 3"),
    (
        ".retalk.toml",
        'select = "File."\n',
        '.retalk.toml select: must be a list of code prefixes, not "File."',
    ),
    (
        ".retalk.toml",
        'strict = "yes"\n',
        '.retalk.toml strict: must be a boolean or a list of code prefixes, not "yes"',
    ),
    (
        ".retalk.toml",
        'select = ["InvalidFile.Fps"]\n',
        ".retalk.toml select: no finding code starts with 'InvalidFile.Fps'; did you mean "
        "InvalidFile.FPS?",
    ),
    (
        ".retalk.toml",
        'strict = ["Face.Tuned"]\n',
        ".retalk.toml strict: no finding code starts with 'Face.Tuned'; did you mean Face.Turned?",
    ),
    (
        ".retalk.toml",
        '[per-path-ignores]\n"drafts/*" = ["Nope."]\n',
        ".retalk.toml per-path-ignores 'drafts/*': no finding code starts with 'Nope.'",
    ),
    (
        ".retalk.toml",
        "face-samples = 0\n",
        ".retalk.toml face-samples: 0 is outside 1 to 240 frames analysed",
    ),
    (".retalk.toml", "[video\nmax-side = 1\n", ".retalk.toml: not valid TOML: "),
    ("pyproject.toml", "[tool.retalk]\nx = = 1\n", "pyproject.toml: not valid TOML: "),
]


@pytest.mark.parametrize(("name", "text", "message"), ERRORS, ids=[m[:50] for _, _, m in ERRORS])
def test_config_mistakes_are_one_line_and_exit_2(
    run, tmp_path: Path, name: str, text: str, message: str
) -> None:
    _write(tmp_path, name, text)
    for command in (("config",), ("check", "--no-content", "x.mp4")):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"retalk: {message}"), result.stderr


def test_an_unusable_config_option_is_exit_2(run, tmp_path: Path) -> None:
    locked = _write(tmp_path, "locked.toml", "strict = true\n")
    locked.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        # Root reads everything: drop its power to override file modes (as test_cli does).
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop root's override")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    for path, said in (
        (tmp_path / "none.toml", "no such file"),
        (tmp_path, "is a folder, not a config file"),
        (locked, "no permission to read it"),
    ):
        result = run(
            "check", "--no-content", "--config", str(path), "x.mp4", cwd=tmp_path, prefix=prefix
        )
        assert result.returncode == 2
        assert result.stderr == f"retalk: --config {path}: {said}\n"


# --- precedence and `retalk config` ----------------------------------------------------------


def test_the_command_line_wins_over_the_config(run, tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", EXAMPLE)
    values = _config_json(run, tmp_path)["values"]
    assert values["ignore"] == {
        "value": ["Audio.Silences"],
        "source": "pyproject.toml [tool.retalk]",
    }
    assert values["strict"]["value"] == ["Face.Turned"]
    assert values["video.max-side"] == {
        "value": 1920,
        "source": "pyproject.toml [tool.retalk.video]",
    }
    assert values["video.min-side"] == {"value": 640, "source": "the service's limit"}
    assert values["select"] == {"value": [], "source": "default"}
    given = _config_json(run, tmp_path, "--ignore", "File.,Face.Gaps", "--no-strict")["values"]
    assert given["ignore"] == {"value": ["File.", "Face.Gaps"], "source": "command line"}
    assert given["strict"] == {"value": False, "source": "command line"}
    assert given["video.max-side"]["value"] == 1920  # the rest stays the config's


def test_retalk_config_prints_each_value_and_its_source(run, tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", EXAMPLE)
    result = run("config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines[0] == "# config: pyproject.toml"
    assert 'ignore = ["Audio.Silences"] # pyproject.toml [tool.retalk]' in lines
    assert "face-samples = 24 # default" in lines
    assert "max-side = 1920 # pyproject.toml [tool.retalk.video]" in lines
    assert "max-duration = 120.0 # the service's limit" in lines
    assert lines.count("[video]") == 1 and "[ref]" in lines
    bare = run("config", cwd=tmp_path / "..").stdout  # no config above pytest's tmp folders
    assert bare.splitlines()[0] == "# config: none found: the service's limits, every finding code"


# --- the policy as data ----------------------------------------------------------------------


def test_fingerprint_follows_what_the_rules_judge_by(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, "pyproject.toml", EXAMPLE))
    assert policy.fingerprint() != SERVICE.fingerprint()
    assert policy.fingerprint() == load_policy(tmp_path / "pyproject.toml").fingerprint()
    # Selection is applied after judging: not in the fingerprint.
    selected = replace(SERVICE, select=("File.",), ignore=("Face.",), strict=True)
    assert selected.fingerprint() == SERVICE.fingerprint()
    assert replace(SERVICE, face_samples=8).fingerprint() != SERVICE.fingerprint()
    assert len(SERVICE.fingerprint()) == 16
    # Sent to worker processes: it survives pickling, and hashes.
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert hash(policy) == hash(pickle.loads(pickle.dumps(policy)))


# --- selection -----------------------------------------------------------------------------

FOUND = tuple(
    retalk.Finding(code, CODES[code].severity, "a.mp4", "m")
    for code in (
        "InvalidFile.FPS",
        "InvalidFile.FaceNotMatch",
        "File.NearLimit",
        "File.ExtensionMismatch",
        "Face.Turned",
        "Audio.Silences",
    )
)

# (select, ignore, the codes kept)
SELECTIONS = [
    ((), (), [f.code for f in FOUND]),
    (
        (),
        ("File.",),
        ["InvalidFile.FPS", "InvalidFile.FaceNotMatch", "Face.Turned", "Audio.Silences"],
    ),
    (("File.NearLimit",), ("File.",), ["File.NearLimit"]),
    (
        (),
        ("File.", "File.NearLimit"),
        ["InvalidFile.FPS", "InvalidFile.FaceNotMatch", "Face.Turned", "Audio.Silences"],
    ),
    (("File.",), ("File.Ext",), ["File.NearLimit"]),
    # The more specific prefix wins whichever side it is on.
    (("File.Ext", "Face."), ("File.", "Face.Turned"), ["File.ExtensionMismatch"]),
    (("InvalidFile.",), ("InvalidFile.F",), []),
    (("InvalidFile.FP",), ("InvalidFile.F",), ["InvalidFile.FPS"]),
    # A tie drops the code, as flake8 does.
    (("Face.",), ("Face.",), []),
    # Older spellings stand for their current code.
    (("InvalidFile.FaceNotMach",), (), ["InvalidFile.FaceNotMatch"]),
    (("InvalidFile.",), ("InvalidFile.FaceNotMach",), ["InvalidFile.FPS"]),
    (
        ("",),
        ("Audio.",),
        [
            "InvalidFile.FPS",
            "InvalidFile.FaceNotMatch",
            "File.NearLimit",
            "File.ExtensionMismatch",
            "Face.Turned",
        ],
    ),
]


@pytest.mark.parametrize(("select", "ignore", "kept"), SELECTIONS)
def test_the_longest_prefix_decides(
    select: tuple[str, ...], ignore: tuple[str, ...], kept: list[str]
) -> None:
    report = retalk.Report((), FOUND)
    assert list(report.filtered(select, ignore).codes) == kept
    policy = replace(SERVICE, select=select, ignore=ignore)
    assert list(retalk.policy.apply_policy(report, policy).codes) == kept


@pytest.mark.parametrize(
    ("option", "prefix", "suggestion"),
    [
        ("--select", "InvalidFile.Fps", "InvalidFile.FPS"),
        ("--select", "InvalidFle.", "InvalidFile."),
        ("--ignore", "file.", "File."),
        ("--ignore", "Face.Turnd", "Face.Turned"),
        ("--select", "invalidparameter", "InvalidParameter"),
        ("--select", "Zzz", None),
    ],
)
def test_an_unknown_prefix_is_a_usage_error(
    run, media: Path, option: str, prefix: str, suggestion: str | None
) -> None:
    # A typo must never turn a FAIL into "OK … would accept" with exit 0.
    result = run(
        "check", "--no-content", option, f"File.NearLimit,{prefix}", "fps12.mp4", cwd=media
    )
    assert result.returncode == 2
    assert result.stdout == ""
    said = f"retalk: {option}: no finding code starts with {prefix!r}"
    said += f"; did you mean {suggestion}?" if suggestion else ""
    assert result.stderr == said + "\n"


def test_specific_select_over_a_family_ignore_through_the_command(run, media: Path) -> None:
    args = ("check", "--no-content", "-q", "2s.wav", "mp4-named.m4v", "fps12.mp4")
    result = run(*args, "--ignore", "File.,InvalidFile.", "--select", "File.NearLimit", cwd=media)
    assert result.returncode == 0, result.stderr
    assert [line.split(": ")[1] for line in result.stdout.splitlines()] == [
        "File.NearLimit (warning)"
    ]


def _media_tree(media: Path, root: Path) -> None:
    for target in ("drafts/a.m4v", "drafts/deep/b.m4v", "final/c.m4v", "d.m4v"):
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(media / "mp4-named.m4v")


@pytest.mark.parametrize(
    ("glob", "warned"),
    [
        ("drafts/*", ["final/c.m4v", "d.m4v"]),  # `*` reaches below, as ruff's globs do
        ("drafts/*.m4v", ["final/c.m4v", "d.m4v"]),
        ("*.m4v", []),  # no `/`: the name alone matches
        ("final/c.m4v", ["drafts/a.m4v", "drafts/deep/b.m4v", "d.m4v"]),
        ("other/*", ["d.m4v", "drafts/a.m4v", "drafts/deep/b.m4v", "final/c.m4v"]),
    ],
)
def test_per_path_ignores(run, media: Path, tmp_path: Path, glob: str, warned: list[str]) -> None:
    root = tmp_path / "project"
    _media_tree(media, root)
    _write(root, ".retalk.toml", f'[per-path-ignores]\n"{glob}" = ["File.Ext"]\n')
    # Run from a folder below the config's: the globs stay relative to the config's folder.
    result = run("check", "--no-content", "--format", "json", ".", cwd=root / "drafts")
    mentioned = run("check", "--no-content", "--format", "json", str(root), cwd=root / "drafts")
    for outcome in (result, mentioned):
        assert outcome.returncode == 0, outcome.stderr
    paths = sorted(
        Path(os.path.normpath(root / "drafts" / f["path"])).relative_to(root).as_posix()
        for f in json.loads(mentioned.stdout)["findings"]
        if f["code"] == "File.ExtensionMismatch"
    )
    below = sorted(
        Path(os.path.normpath(root / "drafts" / f["path"])).relative_to(root).as_posix()
        for f in json.loads(result.stdout)["findings"]
        if f["code"] == "File.ExtensionMismatch"
    )
    assert below == [p for p in sorted(warned) if p.startswith("drafts/")]
    assert paths == sorted(warned)


def test_per_path_ignores_do_not_reach_outside_the_config_folder(
    run, media: Path, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _write(root, ".retalk.toml", '[per-path-ignores]\n"*" = ["File."]\n')
    (tmp_path / "outside.m4v").symlink_to(media / "mp4-named.m4v")
    result = run("check", "--no-content", "-q", "../outside.m4v", cwd=root)
    assert "File.ExtensionMismatch" in result.stdout


# --- strict ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "options", "code", "verdict"),
    [
        ("strict = true\n", (), 1, "FAIL (--strict)"),
        ('strict = ["File.NearLimit"]\n', (), 1, "FAIL (strict on File.NearLimit)"),
        ('strict = ["File.Near", "Face."]\n', (), 1, "FAIL (strict on File.Near, Face.)"),
        ('strict = ["Face.Turned"]\n', (), 0, "OK"),
        # --strict adds every warning to the list (and drops none it names)
        ('strict = ["Face.Turned"]\n', ("--strict",), 1, "FAIL (strict on --strict, Face.Turned)"),
        ("strict = true\n", ("--no-strict",), 0, "OK"),
        ("", ("--strict",), 1, "FAIL (--strict)"),
    ],
)
def test_the_verdict_agrees_with_the_exit_code(
    run, media: Path, tmp_path: Path, config: str, options: tuple[str, ...], code: int, verdict: str
) -> None:
    _write(tmp_path, ".retalk.toml", config)
    result = run("check", "--no-content", *options, str(media / "2s.wav"), cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert result.stdout.splitlines()[-1].startswith(verdict + ":")


# --- stricter limits on real media -----------------------------------------------------------

LIMITS = """
[tool.retalk.video]
max-side = 1920
max-duration = 60
min-fps = 24
max-size-mb = 2
[tool.retalk.ref]
max-side = 2048
max-aspect = 1.5
"""

# (file, the one finding line the policy makes, or None: it passes)
STRICTER = [
    (
        "2048x640.mp4",
        "InvalidFile.Resolution: 2048x640, over the project's 1920 px "
        "(the service takes up to 2048 px)",
    ),
    ("640x640.mp4", None),
    (
        "2050x640.mp4",
        "InvalidFile.Resolution: 2050x640, the service takes 640 to 2048 px on each side",
    ),
    (
        "119.96s.mp4",
        "InvalidFile.Duration: 119.96 s, over the project's 60 s (the service takes up to 120 s)",
    ),
    ("120.52s.mp4", "InvalidFile.Duration: 120.52 s, the service takes 2 to 120 s"),
    (
        "fps15.mp4",
        "InvalidFile.FPS: 15 fps, under the project's 24 fps (the service takes from 15 fps)",
    ),
    ("fps12.mp4", "InvalidFile.FPS: 12 fps, the service takes 15 to 60"),
    (
        "good.mp4",
        "InvalidFile.Size: over the project's 2 MB (the service takes up to 300 MB)",
    ),
    (
        "4096x2048.jpg",
        "InvalidFile.ImageSize: 4096x2048 is 2:1, over the project's 1.5:1 "
        "(the service takes up to 2:1) (long side over short side)",
    ),
    ("good.jpg", None),
]


@pytest.mark.parametrize(("name", "line"), STRICTER, ids=[n for n, _ in STRICTER])
def test_stricter_limits_on_real_media(
    run, media: Path, tmp_path: Path, name: str, line: str | None
) -> None:
    _write(tmp_path, "pyproject.toml", LIMITS)
    (tmp_path / name).symlink_to(media / name)
    result = run("check", "--no-content", "-q", "--ignore", "File.NearLimit", name, cwd=tmp_path)
    found = result.stdout.splitlines()
    if line is None:
        assert (result.returncode, found) == (0, []), result.stderr
        return
    assert result.returncode == 1, result.stderr
    if name == "good.mp4":  # its exact size is the encoder's: the words around it are ours
        (said,) = found
        assert said.startswith(f"{name}: InvalidFile.Size: ")
        assert said.endswith("over the project's 2 MB (the service takes up to 300 MB)")
        return
    assert f"{name}: {line}" in found


def test_1080p_at_most_end_to_end(run, media: Path, tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", "[tool.retalk.video]\nmax-side = 1920\n")
    result = run("check", "--no-content", str(media / "2048x640.mp4"), cwd=tmp_path)
    assert result.returncode == 1
    assert "over the project's 1920 px (the service takes up to 2048 px)" in result.stdout
    # Too elongated for one scale to fit both sides in 640 to 1920: scaled, then padded.
    assert "-vf 'scale=1920:600,pad=1920:640:(ow-iw)/2:(oh-ih)/2,setsar=1' " in result.stdout
    # Only the project's limit rejects it: the verdict says whose it is.
    verdict = result.stdout.splitlines()[-1]
    assert verdict.startswith("FAIL: the project's policy would reject 1 of 1")
    # The same file passes without the policy: only the project's limit rejects it.
    assert (
        run("check", "--no-content", str(media / "2048x640.mp4"), cwd=tmp_path / "..").returncode
        == 0
    )
    # In the library, the same.
    policy = load_policy(tmp_path / "pyproject.toml")
    report = retalk.check_video(media / "2048x640.mp4", content=False, policy=policy)
    (found,) = report.findings
    assert (found.code, found.expected) == ("InvalidFile.Resolution", "640 to 1920 px on each side")
    assert retalk.check_video(media / "2048x640.mp4", content=False).ok


def test_the_library_applies_a_policys_selection(media: Path) -> None:
    policy = replace(SERVICE, ignore=("InvalidFile.FPS",))
    assert retalk.check_video(media / "fps12.mp4", content=False, policy=policy).ok
    assert not retalk.check_video(media / "fps12.mp4", content=False).ok
    assert retalk.check_paths([media / "fps12.mp4"], content=False, policy=policy).ok


def test_face_samples_reach_the_face_scan(media: Path) -> None:
    few = replace(SERVICE, face_samples=6)
    report = retalk.check_video(media / "face.mp4", policy=few)
    assert report.inputs[0].facts["faces"]["sampled_frames"] == 6
    default = retalk.check_video(media / "face.mp4")
    assert default.inputs[0].facts["faces"]["sampled_frames"] == retalk.limits.FACE_SAMPLES


# --- a job without video or audio -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (("--video", "good.mp4"), ["input.audio_url"]),
        (("--audio", "good.wav"), ["input.video_url"]),
        (("--ref", "good.png"), ["input.video_url", "input.audio_url"]),
        (("--video", "good.mp4", "--ref", "good.png"), ["input.audio_url"]),
    ],
)
def test_a_job_without_video_or_audio_is_rejected(
    run, media: Path, given: tuple[str, ...], missing: list[str]
) -> None:
    result = run("check", "--no-content", "--format", "json", *given, cwd=media)
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False
    found = [f for f in data["findings"] if f["code"] == "InvalidParameter"]
    assert [f["severity"] for f in found] == ["error"] * len(missing)
    assert [f["message"].rsplit(" ", 1)[1] for f in found] == missing
    text = run("check", "--no-content", *given, cwd=media).stdout
    assert "OK" not in text and text.splitlines()[-1].startswith("FAIL: the service would reject")


def test_the_library_job_without_audio(media: Path) -> None:
    report = retalk.check_job(video=media / "good.mp4", content=False)
    assert not report.ok
    (found,) = report.errors
    assert found.code == "InvalidParameter" and "input.audio_url" in found.message
    assert found.path == str(media / "good.mp4")
    whole = retalk.check_job(video=media / "good.mp4", audio=media / "good.wav", content=False)
    assert "InvalidParameter" not in whole.codes


# --- the rules' registry ---------------------------------------------------------------------


def test_every_code_is_declared_by_a_rule_and_every_declared_code_exists() -> None:
    assert declared_codes() == set(CODES)
    names = [(r.name, r.roles) for r in FILE_RULES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("names", "content"),
    [
        (
            [
                "good.mp4",
                "fps12.mp4",
                "2050x640.mp4",
                "1.9s.mp4",
                "2s.mp4",
                "vp9.mp4",
                "cut.avi",
                "audio-only.mp4",
                "mp4-named.m4v",
                "text.mp4",
                "empty.mp4",
                "300MiB+1.mp4",
                "300MiB.mp4",
                "good.wav",
                "cut.aac",
                "tone.m4a",
                "mp2-named.mp3",
                "good.png",
                "5000x2000.jpg",
                "bomb.png",
                "big.bmp",
            ],
            False,
        ),
        (
            [
                "face.mp4",
                "small-face.mp4",
                "half-face.mp4",
                "group-of-8.jpg",
                "grace.jpg",
                "speech-pause.wav",
                "noisy-speech.wav",
                "quiet-speech.wav",
                "clipped-speech.wav",
            ],
            True,
        ),
    ],
)
def test_no_rule_gives_a_code_it_did_not_declare(
    media: Path, tmp_path: Path, names: list[str], content: bool
) -> None:
    gathered = {}
    produced = set()
    (tmp_path / "notes.txt").write_text("not media\n" * 10)
    for name in [*names, str(tmp_path / "missing.mp4"), str(tmp_path / "notes.txt")]:
        gathered_one, _ = inspect(media / name, None, content=content)
        role = "unreadable" if gathered_one.unreadable else role_of(gathered_one) or "unknown"
        gathered[role] = gathered_one
        for rule in rules_for(role):
            for found in rule.judge(gathered_one, SERVICE):
                produced.add(found.code)
                assert found.code in rule.codes, (rule.name, name, found.code)
    # The rules ran and spoke: the unreadable file's and the unknown one's rules among them.
    assert {"File.Unreadable", "InvalidFile.Openerror"} <= produced
    assert len(produced) >= (5 if content else 10), produced
    job = Job(gathered.get("video"), gathered.get("audio"), None, None)
    if job.video is not None and job.audio is not None:
        job = replace(job, plan=plan_of(job.video, job.audio, False))
    for rule in JOB_RULES:
        for found in rule.judge(job, SERVICE):
            assert found.code in rule.codes, (rule.name, found.code)
    assert all(CODES[c].severity in Severity for c in declared_codes())


def test_the_readme_example_is_a_valid_policy(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("## Project policy", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    policy = load_policy(_write(tmp_path, "pyproject.toml", example))
    assert policy.video.side.high == 1920 and policy.strict == ("Face.Turned",)
    assert policy.ignore == ("Audio.Silences",)
    assert policy.per_path_ignores == (("drafts/*", ("File.", "Face.")),)


def test_no_rule_module_reads_the_services_limits_itself() -> None:
    # Rules take every limit from the policy they are given; limits.py stays the one home of
    # the service's numbers, which reach the rules through `Policy` (and `SERVICE`, for words).
    import ast
    import inspect as source_of

    from retalk.preflight import audio, common, image, job, speech_rules, video
    from retalk.preflight.faces import rules as face_rules

    for module in (audio, common, image, job, speech_rules, video, face_rules):
        tree = ast.parse(source_of.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "retalk.limits":
                assert not {a.name for a in node.names} & {"VIDEO", "AUDIO", "IMAGE", "BY_ROLE"}
            if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "limits":
                assert node.attr not in {"VIDEO", "AUDIO", "IMAGE", "BY_ROLE", "FACE_SAMPLES"}
