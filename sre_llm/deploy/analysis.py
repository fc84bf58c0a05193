"""Rollout analysis: per-arm metrics from Prometheus, checks, a two-proportion test, a decision.

Each arm (champion, challenger) is one Knative revision; the spec's PromQL is run once per arm
with ``$revision`` set. The challenger fails a check when it breaks an absolute threshold or is
significantly worse than the champion (one-sided two-proportion z-test at ``significance``).
No decision before the sample minimum: too few requests is a hold, never a failure.

Decisions: ``advance`` (checks pass and the stage has run its duration), ``hold``, or
``rollback`` (failed analyses in this rollout reached ``failure_threshold``), as in Flagger.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sre_llm.render import k8s as mf
from sre_llm.deploy import rollout as ro
from sre_llm.deploy import traffic as tr
from sre_llm.errors import BadInput
from sre_llm.spec.load import LoadedSpec

Query = Callable[[str], "float | None"]
METRICS = ("requests", "errors", "p95_latency_ms", "remediations", "remediation_successes")
SHADOW_METRICS = ("shadow_decisions", "shadow_agreements")  # read in the shadow stage only


@dataclass(frozen=True)
class Arm:
    version: str
    revision: str
    requests: float | None
    errors: float | None
    p95_latency_ms: float | None
    remediations: float | None
    remediation_successes: float | None
    shadow_decisions: float | None = None
    shadow_agreements: float | None = None


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    op: str
    threshold: float
    passed: bool
    p_value: float | None = None
    detail: str = ""


def substitute(promql: str, revision: str, namespace: str, window: str) -> str:
    return promql.replace("$revision", revision).replace("$namespace", namespace).replace("$window", window)


def collect(spec: LoadedSpec, state: ro.State, query: Query) -> dict[str, Arm]:
    """Run every query for both arms."""
    release = spec.release
    a = release.spec.deployment.rollout.analysis
    out = {}
    for tag, version in ((tr.CHAMPION, state.champion), (tr.CHALLENGER, state.challenger)):
        if version is None:
            continue
        rev = tr.revision_name(mf.service_name(release), version)
        metrics = METRICS + (SHADOW_METRICS if state.stage == tr.SHADOW and tag == tr.CHALLENGER else ())
        out[tag] = measure(spec, version, rev, query, metrics, a.window)
    return out


def measure(spec: LoadedSpec, version: str, revision: str, query: Query, metrics: tuple[str, ...],
            window: str) -> Arm:
    """One arm: each of ``metrics`` (the spec's PromQL) for ``revision`` over ``window``. Also the
    Flagger webhooks' (:mod:`sre_llm.deploy.gates`), so both engines read the same numbers."""
    d = spec.release.spec.deployment
    values = dict.fromkeys(METRICS)  # not measured: None (the shadow gate reads only its two)
    values.update({m: query(substitute(getattr(d.rollout.analysis.queries, m), revision, d.namespace, window))
                   for m in metrics})
    return Arm(version, revision, **values)


def two_proportion_p(x_ref: float, n_ref: float, x_new: float, n_new: float) -> float:
    """One-sided p-value that the new arm's proportion is *higher* than the reference's."""
    if n_ref <= 0 or n_new <= 0:
        return 1.0
    pooled = (x_ref + x_new) / (n_ref + n_new)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_new))
    if se == 0:
        return 1.0 if x_new / n_new <= x_ref / n_ref else 0.0
    z = (x_new / n_new - x_ref / n_ref) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


def _rate(x: float | None, n: float | None) -> float | None:
    return None if x is None or not n else x / n


def _on_failure(bad: list[str], failed: int, threshold: int) -> tuple[str, str]:
    """A failed analysis: hold, or roll back once ``failed`` analyses reach ``threshold`` (as Flagger)."""
    if failed >= threshold:
        return "rollback", f"failed {', '.join(bad)}; {failed} failed analyses reach the threshold {threshold}"
    return "hold", f"failed {', '.join(bad)} ({failed} of {threshold} before rollback)"


def checks(spec: LoadedSpec, arms: dict[str, Arm], compare: bool) -> list[Check]:
    """The challenger's checks; ``compare`` adds the significance test against the champion."""
    rb = spec.release.spec.deployment.rollout.rollback
    new, ref = arms[tr.CHALLENGER], arms.get(tr.CHAMPION)
    out = []
    success = _rate(new.remediation_successes, new.remediations)
    p = None
    if compare and ref is not None and ref.remediations:
        # "worse" = lower success: test the failure proportions
        p = two_proportion_p(ref.remediations - (ref.remediation_successes or 0), ref.remediations,
                             new.remediations - (new.remediation_successes or 0), new.remediations or 0)
    ok = success is not None and success >= rb.min_success_rate and (p is None or p >= rb.significance)
    out.append(Check("remediation_success_rate", success, ">=", rb.min_success_rate, ok, p,
                     _detail(new.remediation_successes, new.remediations, ref and ref.remediation_successes,
                             ref and ref.remediations)))
    errors = _rate(new.errors or 0.0, new.requests)
    p = None
    if compare and ref is not None and ref.requests:
        p = two_proportion_p(ref.errors or 0, ref.requests, new.errors or 0, new.requests or 0)
    ok = errors is not None and errors <= rb.max_error_rate and (p is None or p >= rb.significance)
    out.append(Check("error_rate", errors, "<=", rb.max_error_rate, ok, p,
                     _detail(new.errors or 0, new.requests, ref and (ref.errors or 0), ref and ref.requests)))
    lat = new.p95_latency_ms
    out.append(Check("p95_latency_ms", lat, "<=", rb.max_p95_latency_ms, lat is not None and lat <= rb.max_p95_latency_ms,
                     None, f"champion {_num(ref.p95_latency_ms) if ref else '-'}"))
    return out


def _num(v: float | None) -> str:
    return "no data" if v is None else f"{v:g}"


def _detail(x, n, rx, rn) -> str:
    return f"challenger {_num(x)}/{_num(n)}, champion {_num(rx)}/{_num(rn)}"


def too_few(spec: LoadedSpec, arms: dict[str, Arm], compare: bool) -> list[str]:
    """Arms below the sample minimum (the challenger's, and the champion's when compared): thin
    traffic is a hold, never a failure."""
    need = spec.release.spec.deployment.rollout.rollback.min_samples
    return [f"{tag} has {_num(arm.requests)} requests / {_num(arm.remediations)} remediations"
            for tag, arm in arms.items()
            if (tag == tr.CHALLENGER or compare) and ((arm.requests or 0) < need or (arm.remediations or 0) < need)]


def evidence_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"Analysis at {report['time']} over {report['window']}: {report['decision']} ({report['reason']})"]
    for c in report.get("checks", []):
        p = f", p={c['p_value']:.4g}" if c.get("p_value") is not None else ""
        lines.append(f"  {'pass' if c['passed'] else 'FAIL'} {c['name']}: {_num(c['value'])} {c['op']} "
                     f"{c['threshold']:g} ({c['detail']}{p})")
    lines.append(f"Failed checks: {report['failed_checks']} of {report['failure_threshold']} allowed before rollback")
    return lines


def decide(spec: LoadedSpec, state: ro.State, arms: dict[str, Arm], now: datetime) -> dict[str, Any]:
    """The report: arms, checks, and the decision with its reason (pure)."""
    rb = spec.release.spec.deployment.rollout.rollback
    stages = {s.name: s for s in tr.stages(spec.release)}
    need = rb.min_samples
    compare = state.percent < 100
    short = too_few(spec, arms, compare)
    report: dict[str, Any] = {
        "model": state.model, "champion": state.champion, "challenger": state.challenger, "stage": state.stage,
        "percent": state.percent, "time": ro.iso(now), "window": spec.release.spec.deployment.rollout.analysis.window,
        "min_samples": need, "significance": rb.significance, "failure_threshold": rb.failure_threshold,
        "arms": {tag: asdict(arm) for tag, arm in arms.items()}, "checks": [],
    }
    failed = state.failed_checks
    if state.stage == tr.SHADOW:
        return _shadow_gate(spec, state, arms, now, report, stages)
    if short:
        decision, reason = "hold", f"too few samples: {'; '.join(short)}; need {need} each"
    else:
        results = checks(spec, arms, compare)
        report["checks"] = [asdict(c) for c in results]
        bad = [c.name for c in results if not c.passed]
        if bad:
            failed += 1
            decision, reason = _on_failure(bad, failed, rb.failure_threshold)
        else:
            stage = stages.get(state.stage or "")
            elapsed = (now - ro.parse_time(state.stage_started)).total_seconds()
            due = stage.duration_s if stage else 0
            if elapsed >= due:
                decision, reason = "advance", f"all checks pass after {int(elapsed)} s at {state.percent} %"
            else:
                decision, reason = "hold", f"checks pass; the stage runs {due} s, {int(elapsed)} s so far"
    report.update(decision=decision, reason=reason, failed_checks=failed)
    return report


def analyze(root: str | Path, spec: LoadedSpec, query: Query, now: datetime | None = None, dry_run: bool = False,
            metrics_dir: str | Path | None = None) -> tuple[dict[str, Any], ro.Change | None]:
    """Collect, decide, and (unless ``dry_run``) commit the decision with its evidence."""
    state = ro.require_state(root, spec)
    if state.phase != "progressing":
        raise BadInput(f"the rollout of {state.model} is {state.phase}: nothing to analyze")
    now = now or ro.now_utc()
    report = decide(spec, state, collect(spec, state, query), now)
    if dry_run:
        return report, None
    lines = evidence_lines(report)
    if report["decision"] == "advance":
        change = ro.advance(root, spec, now=now, evidence=lines, report=report, metrics_dir=metrics_dir)
    elif report["decision"] == "rollback":
        change = ro.roll_back(root, spec, report, lines, now=now, automatic=True, metrics_dir=metrics_dir)
    else:
        change = ro.hold(root, spec, report, failed=report["failed_checks"] > state.failed_checks, evidence=lines,
                         metrics_dir=metrics_dir)
    return report, change


def _shadow_gate(spec: LoadedSpec, state: ro.State, arms: dict[str, Arm], now: datetime, report: dict[str, Any],
                 stages: dict[str, tr.Stage]) -> dict[str, Any]:
    """The shadow stage: no live traffic, so no request or outcome minimum; the challenger's
    answers to copies must agree with the champion's often enough, over enough samples."""
    gate = spec.release.spec.deployment.rollout.shadow
    rb = spec.release.spec.deployment.rollout.rollback
    new = arms[tr.CHALLENGER]
    n, agreed = new.shadow_decisions or 0.0, new.shadow_agreements or 0.0
    failed = state.failed_checks
    if gate is None or n < gate.min_samples:
        need = gate.min_samples if gate else 0
        report.update(decision="hold", reason=f"too few shadow samples: challenger has {_num(new.shadow_decisions)} "
                                               f"shadow decisions; need {need}", failed_checks=failed)
        return report
    agreement = min(agreed, n) / n  # two increase() queries extrapolate apart: never above 1
    check = Check("shadow_agreement", agreement, ">=", gate.min_agreement, agreement >= gate.min_agreement, None,
                  f"challenger agreed {_num(agreed)}/{_num(n)}")
    report["checks"] = [asdict(check)]
    if not check.passed:
        failed += 1
        decision, reason = _on_failure([check.name], failed, rb.failure_threshold)
    else:
        elapsed = (now - ro.parse_time(state.stage_started)).total_seconds()
        due = stages[tr.SHADOW].duration_s
        if elapsed >= due:
            decision, reason = "advance", f"shadow agreement {agreement:.3g} over {int(n)} decisions after {int(elapsed)} s"
        else:
            decision, reason = "hold", f"shadow gate passes; the stage runs {due} s, {int(elapsed)} s so far"
    report.update(decision=decision, reason=reason, failed_checks=failed)
    return report
