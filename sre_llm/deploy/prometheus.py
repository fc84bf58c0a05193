"""The Prometheus HTTP API client of the rollout analysis (the one place it does HTTP).

Instant queries only: ``GET /api/v1/query``. A query with no series answers None (no data yet),
as does NaN (``histogram_quantile`` over nothing); several series are refused, since a check
needs one number per arm.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from sre_llm.errors import BadInput, CheckFailed


def query(base_url: str, promql: str, timeout: float = 10.0) -> float | None:
    """One number from an instant query, or None when Prometheus has no data for it."""
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):  # urllib would also open file: and ftp:
        raise BadInput(f"{base_url}: a Prometheus URL is http:// or https://")
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the URL's scheme is checked to be http(s) above
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())
            detail = f"{err.get('errorType')}: {err.get('error')}"
        except ValueError:
            detail = f"HTTP {exc.code}"
        raise BadInput(f"prometheus refused query {promql!r}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckFailed(f"prometheus at {base_url} is unreachable ({reason}): no decision without metrics",
                          code="unreachable") from None
    if body.get("status") != "success":
        raise BadInput(f"prometheus refused query {promql!r}: {body.get('errorType')}: {body.get('error')}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        value = result[1]
    elif kind == "vector":
        if not result:
            return None
        if len(result) > 1:
            raise BadInput(f"query {promql!r} returned {len(result)} series; aggregate it to one (sum, max, …)")
        value = result[0]["value"][1]
    else:
        raise BadInput(f"query {promql!r} returned a {kind}; an instant vector or scalar is needed")
    number = float(value)
    return None if math.isnan(number) else number
