"""Prometheus HTTP API collector: alert history and current alerts as raw alert records.

History comes from ``query_range`` over ``ALERTS{alertstate="firing"}`` (the spec's ``query``),
read in windows of at most 10,000 steps (Prometheus refuses more than 11,000 points per series).
Each unbroken run of samples of one series is one firing: ``startsAt`` its first sample,
``endsAt`` its last, or none when the run reaches the end of the range (it still fires: an end
there would read as "resolved on its own", evidence for a ``none`` label). ``ALERTS`` carries
labels but no annotations, so the rule's annotation templates come from ``/api/v1/rules`` and
are expanded for ``$labels.x`` / ``.Labels.x`` (the ones the agent-sre convention uses);
``$value`` is unknown afterwards and left out.
Current alerts come from ``/api/v1/alerts`` with the annotations Prometheus expanded itself.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

from sre_llm.collect.http import Unreachable, request_json
from sre_llm.dataset.records import fingerprint, utc
from sre_llm.spec.types import duration_seconds

MAX_POINTS = 10_000
_LABEL_REF = re.compile(r"\{\{-?\s*(?:\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")
_ANY_TEMPLATE = re.compile(r"\{\{[^}]*\}\}")


def expand(template: str, labels: dict[str, str], keep_unknown: bool = False) -> str:
    """Expand ``{{ $labels.x }}`` (and ``{{ .Labels.x }}``); drop what cannot be known later.

    With ``keep_unknown`` other templates stay, so that a ``lambda_parameters`` that needed one
    is quarantined as unexpanded rather than trained on half-filled.
    """
    text = _LABEL_REF.sub(lambda m: labels.get(m.group(1), ""), template)
    if not keep_unknown and "{{" in text:
        text = _ANY_TEMPLATE.sub("", text)
    return text


class Client:
    def __init__(self, url: str, token: str | None = None, **http: Any):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http

    def api(self, path: str, **params: Any) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        doc = request_json(f"{self.url}{path}{query}", what="prometheus", headers=self.headers, **self.http)
        if not isinstance(doc, dict) or doc.get("status") != "success":
            err = doc.get("error", "no status") if isinstance(doc, dict) else "not an object"
            raise Unreachable(f"prometheus: {self.url}{path}: {err}")
        return doc["data"]

    def rule_annotations(self) -> dict[str, dict[str, str]]:
        """alertname → annotation templates of its alerting rule."""
        out: dict[str, dict[str, str]] = {}
        for group in self.api("/api/v1/rules", type="alert").get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("type") == "alerting":
                    out.setdefault(rule["name"], rule.get("annotations") or {})
        return out

    def history(self, query: str, start: float, end: float, step: int) -> Iterator[dict]:
        """One record per firing found by ``query_range`` between ``start`` and ``end``."""
        templates = self.rule_annotations()
        window = step * MAX_POINTS
        t = start
        open_runs: dict[tuple, list[float]] = {}  # a firing that spans windows continues
        while t < end:
            t_end = min(t + window, end)
            data = self.api("/api/v1/query_range", query=query, start=f"{t:.3f}", end=f"{t_end:.3f}", step=step)
            for series in data.get("result", []):
                labels = {k: v for k, v in series["metric"].items() if k not in ("__name__", "alertstate")}
                key = tuple(sorted(labels.items()))
                for ts, _ in series.get("values", []):
                    ts = float(ts)
                    run = open_runs.get(key)
                    if run is not None and ts - run[1] > 2 * step:
                        yield _record(labels, run, templates)
                        run = None
                    if run is None:
                        open_runs[key] = [ts, ts]
                    else:
                        run[1] = ts
            t = t_end + step
        for key, run in open_runs.items():
            yield _record(dict(key), run, templates, firing=run[1] >= end - 2 * step)

    def current(self) -> Iterator[dict]:
        for a in self.api("/api/v1/alerts").get("alerts", []):
            if a.get("state") != "firing":
                continue
            labels = {k: v for k, v in (a.get("labels") or {}).items() if k != "alertstate"}
            yield {"kind": "alert", "source": "prometheus", "fingerprint": fingerprint(labels), "status": "firing",
                   "labels": labels, "annotations": a.get("annotations") or {}, "startsAt": a.get("activeAt"),
                   "endsAt": None}


def _record(labels: dict, run: list[float], templates: dict[str, dict[str, str]], firing: bool = False) -> dict:
    ann = {k: expand(v, labels, keep_unknown=k == "lambda_parameters")
           for k, v in templates.get(labels.get("alertname", ""), {}).items()}
    return {"kind": "alert", "source": "prometheus", "fingerprint": fingerprint(labels), "status": "firing",
            "labels": labels, "annotations": ann, "startsAt": utc(run[0]), "endsAt": None if firing else utc(run[1])}


def collect(source: Any, root: str | Path = ".", now: float | None = None, **http: Any) -> Iterator[dict]:
    """Records for a spec ``prometheus`` source: the history, then the alerts firing now."""
    from sre_llm.secrets import resolve

    token = resolve(source.bearer_token, root) if source.bearer_token else None
    client = Client(source.url, token, **http)
    end = time.time() if now is None else now
    step = max(1, duration_seconds(source.step))
    yield from client.history(source.query, end - duration_seconds(source.lookback), end, step)
    yield from client.current()
