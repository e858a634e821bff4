"""The preflight as a gate before a job is uploaded: what the service would reject blocks it,
and so do the warnings a project policy makes strict; the other warnings are shown, never
passed over in silence (a faceless video with music for audio must not be billed without a
word)."""

from __future__ import annotations

from dataclasses import dataclass

from retalk.findings import Finding, Report
from retalk.job import Job
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

    @property
    def passed(self) -> bool:
        """Nothing blocks it."""
        return not self.blocking and not self.pointers

    def summary(self, forced: bool = False) -> dict[str, object]:
        """What the ledger keeps of it."""
        return {
            "errors": sorted({f.code for f in self.report.errors}),
            "warnings": sorted({f.code for f in self.report.warnings}),
            "blocking": sorted({f.code for f in self.blocking}),
            "forced": forced,
        }


def gate(job: Job, policy: Policy = SERVICE, content: bool = True) -> Verdict:
    """The preflight's verdict on the job (`retalk.preflight.check`): local files in full,
    URLs as the service sees them (reachable within its 60 s, their metadata read with range
    requests, `InvalidURL.*` when not). Raises `EnvironmentProblem` when the check cannot
    run."""
    from retalk.preflight import check

    report = check(job, content=content, policy=policy)
    pointers = tuple(f for f in report.findings if f.code == LFS_POINTER)
    strict = tuple(f for f in report.warnings if f.code != LFS_POINTER and policy.strict_on(f.code))
    shown = tuple(f for f in report.warnings if f not in strict and f.code != LFS_POINTER)
    return Verdict(report, report.errors + strict, shown, pointers)
