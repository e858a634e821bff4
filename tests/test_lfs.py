"""Git LFS pointers: a checkout without `git lfs pull` holds small text files where the media
should be. Each is a `File.LfsPointer` warning that names the real file's size, not an
`InvalidFile.Openerror`; a file that only looks like one is judged as usual; `retalk submit`
uploads none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import retalk
from retalk.emulator import Emulator
from retalk.preflight import lfs
from retalk.preflight.formats import MEDIA_ENDINGS

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
POINTER = f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345678\n"
KEY = "sk-lfs-test-key"


def test_a_pointer_under_each_media_ending_is_an_lfs_warning(run, tmp_path: Path) -> None:
    names = [f"clip.{ending}" for ending in sorted(MEDIA_ENDINGS)]
    for name in names:
        (tmp_path / name).write_text(POINTER)
    result = run("check", "--no-content", "--format", "json", *names, cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # a warning: the commit is not blocked
    data = json.loads(result.stdout)
    assert [f["code"] for f in data["findings"]] == ["File.LfsPointer"] * len(names)
    assert [f["path"] for f in data["findings"]] == names
    for item in data["inputs"]:
        assert item["kind"] == "unknown"
        assert item["facts"]["container"] == "lfs-pointer"
        assert item["facts"]["lfs"] == {"oid": f"sha256:{OID}", "size_bytes": 12345678}
    message = data["findings"][0]["message"]
    assert "11.8 MB" in message and "git lfs pull" in message


def test_the_text_report_shows_the_pointer(run, tmp_path: Path) -> None:
    (tmp_path / "talk.mp4").write_text(POINTER)
    result = run("check", "talk.mp4", cwd=tmp_path)  # content on: no model is needed for it
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("talk.mp4: unknown, Git LFS pointer, ")
    assert lines[1].startswith("talk.mp4: File.LfsPointer (warning): a Git LFS pointer, not")
    assert lines[2] == "    fix: git lfs pull"
    assert "InvalidFile.Openerror" not in result.stdout


def test_a_pointer_in_the_job_form_and_strict(run, tmp_path: Path) -> None:
    (tmp_path / "talk.mp4").write_text(POINTER)
    (tmp_path / "speech.wav").write_text(POINTER)
    job = run("check", "--video", "talk.mp4", "--audio", "speech.wav", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    assert job.stdout.count("File.LfsPointer (warning)") == 2
    # --strict leaves the pointer aside (a checkout without LFS must not block every commit) …
    lenient = run("check", "--strict", "talk.mp4", cwd=tmp_path)
    assert lenient.returncode == 0 and "File.LfsPointer (warning)" in lenient.stdout
    # … and the verdict says the file was not checked …
    verdict = lenient.stdout.splitlines()[-1]
    assert verdict.startswith("OK: nothing checked: the file is a Git LFS pointer")
    # … a strict list that names it does not.
    (tmp_path / ".retalk.toml").write_text('strict = ["File.LfsPointer"]\n')
    named = run("check", "talk.mp4", cwd=tmp_path)
    assert named.returncode == 1 and "FAIL (strict on File.LfsPointer)" in named.stdout
    # … nor does --strict over that list: it adds every warning, and drops none it names.
    both = run("check", "--strict", "talk.mp4", cwd=tmp_path)
    assert both.returncode == 1 and "FAIL (strict on --strict, File.LfsPointer)" in both.stdout


@pytest.mark.parametrize(
    "text",
    [
        POINTER.replace("spec/v1", "spec/v2"),  # a version git-lfs does not know
        POINTER.replace("spec/v1", "spec/v10"),
        POINTER.replace("size 12345678", "size twelve"),
        POINTER.replace(f"sha256:{OID}", "sha256:abc"),
        POINTER.replace("\nsize", "\nsize 1\nsize"),  # a key twice
        f"version https://git-lfs.github.com/spec/v1\nsize 1\noid sha256:{OID}\n",  # unsorted
        POINTER.rstrip("\n"),  # no newline at the end
        POINTER + "x-padding " + "p" * 1000 + "\n",  # past git-lfs's 1024-byte cutoff
    ],
    ids=["version", "version-10", "size", "oid", "twice", "order", "unended", "huge"],
)
def test_a_file_that_only_looks_like_a_pointer_is_judged_as_usual(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "talk.mp4"
    path.write_text(text)
    assert lfs.parse(text.encode()) is None
    report = retalk.check_file(path, content=False)
    assert report.codes == ("InvalidFile.Openerror",)


def test_pointers_as_git_lfs_writes_them_are_read() -> None:
    extended = (
        "version https://git-lfs.github.com/spec/v1\n"
        "ext-0-foo sha256:" + "0" * 64 + "\n"
        f"oid sha256:{OID}\nsize 0\n"
    )
    old = POINTER.replace("git-lfs.github.com", "hawser.github.com")
    crlf = POINTER.replace("\n", "\r\n")  # checked out with core.autocrlf
    for text in (POINTER, extended, old, crlf):
        assert lfs.parse(text.encode()) is not None, text
    assert lfs.parse(POINTER.encode()) == lfs.Pointer(OID, 12345678)


def test_submit_refuses_to_upload_a_pointer(run, media: Path, tmp_path: Path) -> None:
    (tmp_path / "talk.mp4").write_text(POINTER)
    with Emulator(api_key=KEY, storage=tmp_path / "emulator") as emulator:
        env = {
            **os.environ,
            "DASHSCOPE_API_KEY": KEY,
            "DASHSCOPE_HTTP_BASE_URL": emulator.base_url,
            "HOME": str(tmp_path),
        }
        for force in ((), ("--force",)):
            result = run(
                "submit", "--no-content", *force, "--video", "talk.mp4",
                "--audio", str(media / "speech.wav"), cwd=tmp_path, env=env,
            )  # fmt: skip
            assert result.returncode == 1, result.stderr
            assert result.stderr == (
                "retalk: talk.mp4: a Git LFS pointer, not the file: run `git lfs pull` first\n"
            )
            assert result.stdout == ""
        assert not (emulator.storage / "oss").exists() and emulator.engine.tasks == {}
