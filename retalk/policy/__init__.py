"""A project's policy: stricter limits than the service's, and which findings count.

`load_policy` reads it (`[tool.retalk]` in pyproject.toml, or `.retalk.toml`); rules judge by
its limits; `apply_policy` selects the findings afterwards.
"""

from retalk.policy.load import find_config, load_policy
from retalk.policy.model import LIMIT_KEYS, SERVICE, LimitKey, Policy
from retalk.policy.selection import (
    apply_policy,
    check_prefixes,
    fails,
    is_selected,
    kept_anyway,
)

__all__ = [
    "LIMIT_KEYS",
    "SERVICE",
    "LimitKey",
    "Policy",
    "apply_policy",
    "check_prefixes",
    "fails",
    "find_config",
    "is_selected",
    "kept_anyway",
    "load_policy",
]
