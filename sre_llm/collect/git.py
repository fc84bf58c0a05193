"""git collector: merged commits that touch infrastructure paths, linked to alerts and issues.

Reads the spec's branch of a local clone (gitpython), first-parent history (what was merged),
newer than ``lookback``, touching one of ``paths``. Trailers link a commit:

    Alert-Fingerprint: c0ffee0123456789     (or Alertname: / Namespace:)
    Linear: ENG-123                         (or "Fixes ENG-123" in the message)
    LambdaFunction: flux-reconcile-kustomization
    Parameters: {"name": "apps", "namespace": "flux-system"}

A commit becomes a ``resolution`` record; like Linear issues, it labels an alert only when it
names a LambdaFunction (e.g. a fix that a reconcile rolled out).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

from sre_llm.errors import BadInput
from sre_llm.spec.types import duration_seconds

_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.+?)\s*$", re.M)
_ISSUE = re.compile(r"\b(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?|refs?)\s+([A-Z][A-Z0-9]+-\d+)\b", re.I)


def trailers(message: str) -> dict[str, str]:
    """``Key: value`` lines of the message (last wins), keys lower-cased."""
    return {k.lower(): v for k, v in _TRAILER.findall(message)}


def resolution(sha: str, message: str, when: float, files: list[str]) -> dict:
    t = trailers(message)
    issue = t.get("linear") or (m.group(1).upper() if (m := _ISSUE.search(message)) else None)
    rec: dict[str, Any] = {
        "kind": "resolution", "source": "git", "id": sha, "timestamp": when, "outcome": "success",
        "title": message.splitlines()[0] if message else "", "files": files,
        **({"incident": issue} if issue else {}),
    }
    if t.get("alert-fingerprint"):
        rec["fingerprint"] = t["alert-fingerprint"]
    if t.get("alertname"):
        rec["labels"] = {"alertname": t["alertname"], **({"namespace": t["namespace"]} if t.get("namespace") else {})}
    if t.get("lambdafunction"):
        rec["lambda_function"] = t["lambdafunction"]
        try:
            rec["parameters"] = json.loads(t.get("parameters", "{}"))
        except json.JSONDecodeError:
            rec["parameters"] = {"_unparsed": t["parameters"]}
    return rec


def collect(source: Any, root: str | Path = ".", now: float | None = None) -> Iterator[dict]:
    """Resolution records for a spec ``git`` source."""
    import git

    path = Path(source.repo) if Path(source.repo).is_absolute() else Path(root) / source.repo
    try:
        repo = git.Repo(path)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        raise BadInput(f"git source {source.repo}: not a git repository") from None
    if source.branch not in [h.name for h in repo.heads]:
        raise BadInput(f"git source {source.repo}: no branch {source.branch!r}")
    since = (time.time() if now is None else now) - duration_seconds(source.lookback)
    paths = [p for p in source.paths if p not in (".", "")]
    for commit in repo.iter_commits(source.branch, paths=paths or None, first_parent=True):
        if commit.committed_date < since:
            break
        files = sorted(str(f) for f in commit.stats.files)
        yield resolution(commit.hexsha, commit.message, commit.committed_date, files)
