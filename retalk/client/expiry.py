"""When a result link stops working: from its own address (`Expires=`, or OSS's V4
`x-oss-date` + `x-oss-expires`), or from the storage's refusal (`<Expires>` in its XML)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

_EXPIRED = re.compile(r"request has expired|expired", re.IGNORECASE)


def link_expiry(url: str) -> datetime | None:
    """When the signed link `url` expires (UTC); None when it does not say."""
    query = {k.lower(): v[-1] for k, v in parse_qs(urlsplit(url).query).items() if v}
    expires = query.get("expires", "")
    if re.fullmatch(r"\d{1,12}", expires):
        return datetime.fromtimestamp(int(expires), UTC)
    signed, lasts = query.get("x-oss-date", ""), query.get("x-oss-expires", "")
    if re.fullmatch(r"\d{8}T\d{6}Z", signed) and re.fullmatch(r"\d{1,9}", lasts):
        start = datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return start + timedelta(seconds=int(lasts))
    return None


def answer_expiry(body: bytes) -> datetime | None:
    """The `<Expires>` of an OSS error answer (ISO 8601, UTC); None when it has none."""
    found = re.search(rb"<Expires>([^<]{1,64})</Expires>", body[: 64 * 1024])
    if not found:
        return None
    text = found.group(1).decode("ascii", "replace").strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def says_expired(status: int, code: str | None, message: str) -> bool:
    """Whether an error answer to a download is the storage saying the link has expired."""
    return status == 403 and code == "AccessDenied" and bool(_EXPIRED.search(message))


def is_past(when: datetime | None) -> bool:
    return when is not None and when <= datetime.now(UTC)
