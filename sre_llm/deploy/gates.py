"""The rollout analysis offered to Flagger as webhooks (``deployment.rollout.engine: flagger``).

Flagger's MetricTemplates check one number against a fixed range; what they cannot do is the
comparison ``sre-llm rollout analyze`` makes: both arms' counts, a one-sided two-proportion test
against the champion, and no verdict before the sample minimum. The collector (always on, in the
namespace sre-llm owns) serves that comparison as three webhooks, from the same code
(:func:`sre_llm.deploy.analysis.measure`, :func:`~sre_llm.deploy.analysis.too_few`,
:func:`~sre_llm.deploy.analysis.checks`), so both engines judge by the same numbers:

- ``POST /flagger/shadow`` (``confirm-rollout``: Flagger waits, without failing, until it
  answers 2xx): the shadow gate. The champion's gateway copies every request to the
  ``<service>-shadow`` Service running the challenger (:mod:`sre_llm.render.flagger`); the gate
  passes once the challenger answered ``shadow.min_samples`` copies within the last
  ``shadow.duration`` and agreed with the champion on ``shadow.min_agreement`` of them.
- ``POST /flagger/check`` (``rollout``: a non-2xx counts toward ``analysis.threshold``, then
  Flagger rolls back): fails only on evidence, an absolute threshold broken or the challenger
  significantly worse. Thin traffic passes here, since a failure would count toward a rollback.
- ``POST /flagger/confirm`` (``confirm-traffic-increase``: Flagger holds the weight, without
  failing, until it answers 2xx): holds while either arm is below the sample minimum or a check
  fails. Thin traffic therefore holds rather than fails, as in the gitops engine.

Flagger posts ``{name, namespace, phase, checksum, metadata}``; the rendered metadata names the
champion and challenger versions (revision names derive from versions). Flagger sends no
headers of its own, so these routes take no bearer token: they only read Prometheus, and the
collector's NetworkPolicy admits Flagger's namespace. 412 is the "not yet / no" answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sre_llm.deploy import analysis
from sre_llm.deploy import traffic as tr
from sre_llm.errors import SreLlmError
from sre_llm.spec.load import LoadedSpec, load_spec

PASS, NO = 200, 412
GATES = {"/flagger/shadow": "shadow", "/flagger/check": "check", "/flagger/confirm": "confirm"}
shadow_service, shadow_revision = tr.shadow_service, tr.shadow_revision


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str
    report: dict[str, Any]


def _versions(spec: LoadedSpec, payload: dict[str, Any]) -> tuple[str | None, str]:
    meta = payload.get("metadata") or {}
    if not isinstance(meta, dict):
        meta = {}
    challenger = str(meta.get("challenger") or spec.release.metadata.version)
    champion = str(meta.get("champion") or "") or None
    return (None if champion == challenger else champion), challenger


def verdict(spec: LoadedSpec, gate: str, payload: dict[str, Any], query: analysis.Query) -> Verdict:
    """Flagger's answer for ``gate`` (shadow, check or confirm). Pure apart from ``query``."""
    from sre_llm.render.k8s import service_name

    release = spec.release
    service = service_name(release)
    champion, challenger = _versions(spec, payload)
    report: dict[str, Any] = {"gate": gate, "model": release.metadata.name, "champion": champion,
                              "challenger": challenger, "canary": payload.get("name")}
    if gate == "shadow":
        return _shadow(spec, service, champion, challenger, query, report)
    a = release.spec.deployment.rollout.analysis
    arms = {tr.CHALLENGER: analysis.measure(spec, challenger, tr.revision_name(service, challenger), query,
                                            analysis.METRICS, a.window)}
    if champion is not None:
        arms[tr.CHAMPION] = analysis.measure(spec, champion, tr.revision_name(service, champion), query,
                                             analysis.METRICS, a.window)
    report["arms"] = {tag: vars(arm) for tag, arm in arms.items()}
    short = analysis.too_few(spec, arms, compare=champion is not None)
    need = release.spec.deployment.rollout.rollback.min_samples
    if short:
        why = f"too few samples: {'; '.join(short)}; need {need} each"
        # A rollout hook's failure counts toward a rollback: thin traffic must not fail it.
        return Verdict(PASS, f"pass ({why})", report) if gate == "check" else Verdict(NO, f"hold: {why}", report)
    results = analysis.checks(spec, arms, compare=champion is not None)
    report["checks"] = [vars(c) for c in results]
    bad = [c for c in results if not c.passed]
    if bad:
        detail = "; ".join(f"{c.name} {analysis._num(c.value)} {c.op} {c.threshold:g} ({c.detail}"
                           + (f", p={c.p_value:.4g}" if c.p_value is not None else "") + ")" for c in bad)
        return Verdict(NO, f"failed {detail}", report)
    return Verdict(PASS, "all checks pass: " + ", ".join(f"{c.name} {analysis._num(c.value)}" for c in results), report)


def _shadow(spec: LoadedSpec, service: str, champion: str | None, challenger: str, query: analysis.Query,
            report: dict[str, Any]) -> Verdict:
    gate = spec.release.spec.deployment.rollout.shadow
    if gate is None:
        return Verdict(PASS, "no shadow stage in the spec", report)
    if champion is None:
        return Verdict(PASS, "no champion to shadow (first release)", report)
    rev = shadow_revision(service, challenger)
    arm = analysis.measure(spec, challenger, rev, query, analysis.SHADOW_METRICS, gate.duration)
    report["arms"] = {tr.CHALLENGER: vars(arm)}
    n, agreed = arm.shadow_decisions or 0.0, arm.shadow_agreements or 0.0
    if n < gate.min_samples:
        return Verdict(NO, f"hold: too few shadow samples: {rev} answered {analysis._num(arm.shadow_decisions)} "
                           f"copies in the last {gate.duration}; need {gate.min_samples}", report)
    agreement = min(agreed, n) / n  # two increase() queries extrapolate apart: never above 1
    report["checks"] = [{"name": "shadow_agreement", "value": agreement, "threshold": gate.min_agreement}]
    if agreement < gate.min_agreement:
        return Verdict(NO, f"hold: shadow agreement {agreement:.3g} < {gate.min_agreement:g} over {int(n)} copies", report)
    return Verdict(PASS, f"shadow agreement {agreement:.3g} over {int(n)} copies", report)


Handler = Callable[[dict, bytes], Awaitable[tuple[int, str]]]


class FlaggerGates:
    """The collector's Flagger routes. The spec is a file (a mounted ConfigMap the kubelet
    refreshes when a new version is rendered): re-read when its bytes change."""

    def __init__(self, spec_path: str | Path, query: analysis.Query | None = None):
        self.path = Path(spec_path)
        self._query = query
        self._cached: tuple[str, LoadedSpec] | None = None

    def spec(self) -> LoadedSpec:
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        if self._cached is None or self._cached[0] != digest:
            self._cached = (digest, load_spec(self.path))
        return self._cached[1]

    def query(self, spec: LoadedSpec) -> analysis.Query:
        if self._query is not None:
            return self._query
        from sre_llm.deploy import prometheus

        url = spec.release.spec.deployment.rollout.analysis.prometheus_url
        return lambda promql: prometheus.query(url, promql)

    def answer(self, gate: str, body: bytes) -> tuple[int, str]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, "body is not JSON (Flagger posts {name, namespace, phase, checksum, metadata})"
        if not isinstance(payload, dict):
            return 400, "body is not a JSON object"
        try:
            spec = self.spec()
            v = verdict(spec, gate, payload, self.query(spec))
        except SreLlmError as exc:
            # No metrics (Prometheus down) or a broken spec is no evidence: the rollout hook does not
            # count it toward a rollback, and the confirm gates hold (never a pass on no data).
            return (PASS, f"pass (no verdict: {exc})") if gate == "check" else (503, f"hold: no verdict: {exc}")
        return v.status, v.message

    def routes(self) -> dict[str, Handler]:
        def handler(gate: str) -> Handler:
            async def handle(scope: dict, body: bytes) -> tuple[int, str]:
                return await asyncio.to_thread(self.answer, gate, body)  # urllib and the spec load block
            return handle
        return {path: handler(gate) for path, gate in GATES.items()}
