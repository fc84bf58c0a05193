"""Linear collector: completed issues in a time window, through the GraphQL API (Relay pages).

An issue becomes a ``resolution`` record. It labels an alert only when it says which
LambdaFunction resolved it, in either form:

- a label ``lambda:<function>`` (or ``remediation:<function>``), parameters from a
  ``Parameters: {...}`` line in the description or a comment;
- the canonical two lines ``LambdaFunction: <name>`` / ``Parameters: {...}`` in the description
  or a comment.

It is linked to its alert by ``Alert-Fingerprint: <16 hex>`` or ``Alertname: <name>`` plus
``Namespace: <ns>`` lines (what agent-sre writes when it opens an issue).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sre_llm.collect.http import Unreachable, request_json
from sre_llm.spec.types import duration_seconds

PAGE_SIZE = 50
MAX_PAGES = 10_000

QUERY = """query CompletedIssues($filter: IssueFilter, $first: Int!, $after: String) {
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt) {
    nodes {
      identifier title description url completedAt
      state { name type }
      labels { nodes { name } }
      comments { nodes { body } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""

_FN_LINE = re.compile(r"^\s*LambdaFunction:\s*([a-z0-9-]+)\s*$", re.M | re.I)
_PARAMS_LINE = re.compile(r"^\s*Parameters:\s*(\{.*\})\s*$", re.M)
_FP = re.compile(r"^\s*Alert-Fingerprint:\s*([0-9a-f]{16})\s*$", re.M | re.I)
_NAME = re.compile(r"^\s*Alertname:\s*(\S+)\s*$", re.M | re.I)
_NS = re.compile(r"^\s*Namespace:\s*(\S+)\s*$", re.M | re.I)
_LABEL_FN = re.compile(r"^(?:lambda|remediation)[:/](.+)$")


def pages(url: str, token: str, variables: dict, **http: Any) -> Iterator[list[dict]]:
    """Issue nodes page by page, following ``pageInfo.endCursor`` while ``hasNextPage``."""
    after = None
    for _ in range(MAX_PAGES):
        doc = request_json(url, what="linear", data={"query": QUERY, "variables": {**variables, "first": PAGE_SIZE, "after": after}},
                           headers={"Authorization": token}, **http)
        if doc.get("errors"):
            raise Unreachable("linear: " + "; ".join(str(e.get("message", e)) for e in doc["errors"]))
        conn = (doc.get("data") or {}).get("issues") or {}
        yield conn.get("nodes") or []
        info = conn.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return
        if not info.get("endCursor") or info["endCursor"] == after:
            raise Unreachable("linear: hasNextPage without a new endCursor")
        after = info["endCursor"]
    raise Unreachable(f"linear: more than {MAX_PAGES} pages")


def resolution(issue: dict) -> dict:
    """A ``resolution`` record from one issue node."""
    texts = [issue.get("description") or ""] + [c.get("body") or "" for c in (issue.get("comments") or {}).get("nodes", [])]
    blob = "\n".join(texts)
    labels = [l["name"] for l in (issue.get("labels") or {}).get("nodes", []) if l.get("name")]
    fn = None
    for name in labels:
        m = _LABEL_FN.match(name)
        if m:
            fn = m.group(1).strip()
    m = _FN_LINE.search(blob)
    if m:
        fn = m.group(1)
    params: Any = {}
    pm = _PARAMS_LINE.search(blob)
    if pm:
        try:
            params = json.loads(pm.group(1))
        except json.JSONDecodeError:
            params = {"_unparsed": pm.group(1)}  # quarantined by the catalog check, with the reason
    rec: dict[str, Any] = {
        "kind": "resolution", "source": "linear", "id": issue.get("identifier"), "url": issue.get("url"),
        "timestamp": issue.get("completedAt"), "outcome": "success", "title": issue.get("title", ""),
        "issue_labels": labels, "incident": issue.get("identifier"),
    }
    if fn:
        rec["lambda_function"] = fn
        rec["parameters"] = params
    fp, name, ns = _FP.search(blob), _NAME.search(blob), _NS.search(blob)
    if fp:
        rec["fingerprint"] = fp.group(1)
    if name:
        rec["labels"] = {"alertname": name.group(1), **({"namespace": ns.group(1)} if ns else {})}
    return rec


def collect(source: Any, root: str | Path = ".", now: float | None = None, **http: Any) -> Iterator[dict]:
    """Resolution records for a spec ``linear`` source."""
    from sre_llm.secrets import resolve

    token = resolve(source.token, root)
    since = (time.time() if now is None else now) - duration_seconds(source.lookback)
    flt: dict[str, Any] = {"completedAt": {"gt": datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")}}
    if source.team:
        flt["team"] = {"key": {"eq": source.team}}
    for nodes in pages(source.url, token, {"filter": flt}, **http):
        for issue in nodes:
            if issue.get("completedAt"):
                yield resolution(issue)
