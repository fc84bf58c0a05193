"""The collectors' HTTP client: JSON over urllib, retries with exponential backoff, clear errors.

Retried: connection errors, timeouts, 429 and 5xx. Not retried: other 4xx (a wrong URL or token
does not get better by asking again). Tokens go in headers and never into messages.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from sre_llm.errors import BadInput, CheckFailed

RETRIES = 4
BACKOFF_S = 0.5
TIMEOUT_S = 30.0


class Unreachable(CheckFailed):
    """A source did not answer usefully after the retries (exit 1)."""

    code = "unreachable"


def request_json(
    url: str,
    *,
    what: str,
    data: dict | None = None,
    headers: dict[str, str] | None = None,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    timeout_s: float = TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
    context: ssl.SSLContext | None = None,
) -> Any:
    """GET (or POST ``data`` as JSON) and decode the JSON answer."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):  # urllib would also open file: and ftp:
        raise BadInput(f"{what}: {_safe(url)}: only http and https URLs are fetched")
    body = json.dumps(data).encode() if data is not None else None
    hdrs = {"Accept": "application/json", "User-Agent": "sre-llm-collector"}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        req = urllib.request.Request(url, data=body, headers=hdrs, method="POST" if body is not None else "GET")  # noqa: S310 - the URL's scheme is checked to be http(s) above
        try:
            with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:  # noqa: S310 - the URL's scheme is checked to be http(s) above
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            last = f"HTTP {exc.code}{': ' + detail if detail else ''}"
            if exc.code == 429 or exc.code >= 500:
                continue
            raise Unreachable(f"{what}: {_safe(url)}: {last}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            continue
        try:
            return json.loads(raw)
        except ValueError:
            raise Unreachable(f"{what}: {_safe(url)}: answer is not JSON") from None
    raise Unreachable(f"{what}: {_safe(url)}: unreachable after {retries + 1} attempts ({last})")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read() or b"{}")
    except ValueError:
        return ""
    if isinstance(doc, dict):
        if doc.get("error"):  # Prometheus: {"status": "error", "errorType": ..., "error": ...}
            return f"{doc.get('errorType', 'error')}: {doc['error']}"
        if doc.get("errors"):  # GraphQL
            return "; ".join(str(e.get("message", e)) for e in doc["errors"] if isinstance(e, dict))
    return ""


def _safe(url: str) -> str:
    """The URL without credentials or query string (which may carry a token)."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))
