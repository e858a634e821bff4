"""The preflight as a gate before a job is uploaded: what the service would reject blocks it,
and so do the warnings a project policy makes strict; the other warnings are shown, never
passed over in silence (a faceless video with music for audio must not be billed without a
word)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from retalk.findings import Finding, Report
from retalk.job import Job, is_url
from retalk.policy import SERVICE, Policy

LFS_POINTER = "File.LfsPointer"


@dataclass(frozen=True)
class Verdict:
    """The gate's say on a job."""

    report: Report
    """The preflight's report, under the policy."""
    blocking: tuple[Finding, ...]
    """Errors, and warnings the policy makes strict: the job is not uploaded unless forced."""
    warnings: tuple[Finding, ...]
    """The warnings that do not block: shown before any upload."""
    pointers: tuple[Finding, ...]
    """Git LFS pointers (the file not pulled): never uploaded, even when forced."""
    unreachable: tuple[str, ...] = ()
    """URL inputs the service could not fetch, each with its `InvalidURL.*` code."""

    @property
    def passed(self) -> bool:
        """Nothing blocks it."""
        return not self.blocking and not self.pointers and not self.unreachable

    def summary(self, forced: bool = False) -> dict[str, object]:
        """What the ledger keeps of it."""
        return {
            "errors": sorted({f.code for f in self.report.errors}),
            "warnings": sorted({f.code for f in self.report.warnings}),
            "blocking": sorted({f.code for f in self.blocking}),
            "forced": forced,
        }


def gate(job: Job, policy: Policy = SERVICE, content: bool = True) -> Verdict:
    """The preflight's verdict on the job's local inputs (a URL is fetched by the service, and
    judged there). Raises `EnvironmentProblem` when the check cannot run."""
    from retalk.preflight import check_job

    def local(source: str | None) -> str | None:
        return source if source and not is_url(source) else None

    report = check_job(
        video=local(job.video),
        audio=local(job.audio),
        ref=local(job.ref),
        video_extension=job.parameters.video_extension,
        content=content,
        policy=policy,
    )
    if any(is_url(source) for source in job.inputs().values()):
        # The job has both inputs (`Job.check`): a URL is not a missing one.
        report = replace(
            report, findings=tuple(f for f in report.findings if f.code != "InvalidParameter")
        )
    pointers = tuple(f for f in report.findings if f.code == LFS_POINTER)
    strict = tuple(f for f in report.warnings if f.code != LFS_POINTER and policy.strict_on(f.code))
    shown = tuple(f for f in report.warnings if f not in strict and f.code != LFS_POINTER)
    unreachable = tuple(
        why for source in job.inputs().values() if is_url(source) and (why := reachable(source))
    )
    return Verdict(report, report.errors + strict, shown, pointers, unreachable)


def reachable(url: str) -> str | None:
    """Why the service would not fetch `url` (its `InvalidURL.*` code), or None."""
    import httpx

    if url.lower().startswith("oss://"):
        return None
    try:
        with httpx.stream("GET", url, headers={"Range": "bytes=0-0"}, timeout=10) as response:
            if response.status_code >= 400:
                return f"InvalidURL.ConnectionRefused: {url} answers HTTP {response.status_code}"
    except httpx.TimeoutException:
        return f"InvalidURL.Timeout: {url} does not answer"
    except httpx.HTTPError:
        return f"InvalidURL.ConnectionRefused: {url} refuses the connection"
    except httpx.InvalidURL:
        return f"InvalidURL.ConnectionRefused: {url} is not a URL that can be fetched"
    return None
