"""The rollout state machine: A/B test, then steps to 100 %, or back to the champion.

State lives in the GitOps repository, in the Kustomize component ``rollouts/<name>/`` that Flux
applies over the rendered base (``rendered/<name>/k8s/``):

- ``traffic.yaml``  a patch of the serving Service holding only ``spec.traffic`` and annotations
  naming the phase, stage, champion, challenger and when the stage began;
- ``analysis.json`` the last analysis report (decision, evidence, failed checks so far).

It is read back from HEAD (not the working tree), so it survives restarts and every change is a
reviewed commit; a stage move changes the traffic block and nothing else in the manifests.
Phases: ``progressing`` → ``complete`` (challenger at 100 % becomes the champion), or
``rolled-back`` (automatic, checks failed) / ``aborted`` (by hand): 100 % to the champion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sre_llm import gitops
from sre_llm.render import k8s as mf
from sre_llm.deploy import pinning
from sre_llm.deploy import traffic as tr
from sre_llm.deploy.yamldoc import dump, dump_all, load
from sre_llm.errors import BadInput
from sre_llm.fsutil import write_atomic
from sre_llm.spec.load import LoadedSpec

Phase = Literal["progressing", "complete", "rolled-back", "aborted"]
ANN = "sre-llm.io/"
TRAFFIC, ANALYSIS, COMPONENT = "traffic.yaml", "analysis.json", "kustomization.yaml"


@dataclass(frozen=True)
class State:
    model: str
    phase: Phase
    champion: str
    challenger: str | None
    stage: str | None  # stage name while progressing
    percent: int  # the challenger's share
    stage_started: str  # ISO 8601 UTC
    failed_checks: int = 0
    last_decision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Change:
    """What one command did: the state after, the commit, the files it touched."""

    state: State
    decision: str
    commit: str | None = None
    paths: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "commit": self.commit, "paths": self.paths,
                "state": self.state.to_dict(), "message": self.message}


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# ── reading ─────────────────────────────────────────────────────────────────────────────────────


def folder(spec: LoadedSpec) -> str:
    return mf.rollout_dir(spec.release)


def read_state(root: str | Path, spec: LoadedSpec) -> State | None:
    """The committed state, or None when no rollout was ever started. Refuses uncommitted edits:
    what Flux applies is HEAD, and a decision must start from what is deployed."""
    base = folder(spec)
    committed = gitops.committed_bytes(root, f"{base}/{TRAFFIC}")
    on_disk = Path(root) / base / TRAFFIC
    if committed is None:
        if on_disk.exists():
            raise BadInput(f"{base}/{TRAFFIC} is not committed: commit or remove it first")
        return None
    for name in (TRAFFIC, ANALYSIS):
        path = Path(root) / base / name
        if path.exists() and path.read_bytes() != (gitops.committed_bytes(root, f"{base}/{name}") or b""):
            raise BadInput(f"{base}/{name} has uncommitted changes: commit or revert them (state is read from HEAD)")
    doc = load(committed.decode())
    ann = (doc.get("metadata") or {}).get("annotations") or {}
    try:
        routes = doc["spec"]["traffic"]
        challenger_pct = sum(r["percent"] for r in routes if r.get("tag") == tr.CHALLENGER)
        analysis = json.loads(gitops.committed_bytes(root, f"{base}/{ANALYSIS}") or b"{}")
        return State(
            model=spec.release.metadata.name,
            phase=ann[ANN + "rollout-phase"],
            champion=ann[ANN + "champion"],
            challenger=ann.get(ANN + "challenger") or None,
            stage=ann.get(ANN + "rollout-stage") or None,
            percent=challenger_pct,
            stage_started=ann[ANN + "stage-started"],
            failed_checks=int(analysis.get("failed_checks", 0)),
            last_decision=analysis.get("decision"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{base}/{TRAFFIC}: not a rollout state written by sre-llm ({exc})") from None


def require_state(root: str | Path, spec: LoadedSpec) -> State:
    state = read_state(root, spec)
    if state is None:
        raise BadInput(f"no rollout of {spec.release.metadata.name}: run `sre-llm rollout start {spec.path}` first")
    return state


def stage_index(spec: LoadedSpec, state: State) -> int:
    names = [s.name for s in tr.stages(spec.release)]
    if state.stage not in names:
        raise BadInput(f"stage {state.stage!r} is not in the spec's rollout (stages: {', '.join(names)})")
    return names.index(state.stage)


# ── writing ─────────────────────────────────────────────────────────────────────────────────────


def traffic_patch(spec: LoadedSpec, state: State, pinned: tuple[str, ...] = ()) -> str:
    """The component's patch: the split for ``state`` and the annotations that name it; versions in
    ``pinned`` are routed to their copy recreated from git (:mod:`sre_llm.deploy.pinning`)."""
    release = spec.release
    if state.phase == "progressing":
        split = tr.split(state.champion, state.challenger, state.percent)
    else:
        split = tr.split(state.champion)
    ann = {ANN + "rollout-phase": state.phase, ANN + "rollout-stage": state.stage or "",
           ANN + "champion": state.champion, ANN + "challenger": state.challenger or "",
           ANN + "stage-started": state.stage_started}
    doc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": mf.service_name(release), "namespace": release.spec.deployment.namespace,
                     "annotations": ann},
        "spec": {"traffic": tr.traffic_block(mf.service_name(release), split, pinned)},
    }
    header = (f"# Written by `sre-llm rollout` for {release.metadata.name}: the serving Service's traffic split.\n"
              "# Change it with `sre-llm rollout advance|abort`, not by hand.\n")
    return dump(doc, header)


def component(pinned: bool = False) -> str:
    doc: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component"}
    if pinned:  # the champion's revision, recreated from git (sre_llm.deploy.pinning)
        doc["resources"] = [pinning.PIN_FILE]
    doc["patches"] = [{"path": TRAFFIC}]
    return dump(doc, "# Written by `sre-llm rollout start`: applies traffic.yaml over the rendered base.\n")


def metrics_text(state: State, namespace: str) -> str:
    """Prometheus text format for a node-exporter textfile collector (or any scrape of the file)."""
    labels = f'model="{state.model}",namespace="{namespace}",version="{state.challenger or state.champion}"'
    rolled = 1 if state.phase == "rolled-back" else 0
    return (
        f"# HELP {mf.ROLLBACK_METRIC} 1 when sre-llm rolled the challenger back automatically.\n"
        f"# TYPE {mf.ROLLBACK_METRIC} gauge\n"
        f"{mf.ROLLBACK_METRIC}{{{labels}}} {rolled}\n"
        "# HELP sre_llm_rollout_challenger_percent Share of traffic the challenger receives.\n"
        "# TYPE sre_llm_rollout_challenger_percent gauge\n"
        f'sre_llm_rollout_challenger_percent{{model="{state.model}",namespace="{namespace}"}} '
        f"{state.percent if state.phase == 'progressing' else 0}\n"
        "# HELP sre_llm_rollout_failed_checks Failed analyses in the current rollout.\n"
        "# TYPE sre_llm_rollout_failed_checks gauge\n"
        f'sre_llm_rollout_failed_checks{{model="{state.model}",namespace="{namespace}"}} {state.failed_checks}\n'
    )


def write_metrics(metrics_dir: str | Path | None, spec: LoadedSpec, state: State) -> Path | None:
    if metrics_dir is None:
        return None
    path = Path(metrics_dir) / f"sre-llm-rollout-{state.model}.prom"
    write_atomic(path, metrics_text(state, spec.release.spec.deployment.namespace))
    return path


def commit_state(root: str | Path, spec: LoadedSpec, state: State, report: dict[str, Any], message: str,
                 extra: list[str] | None = None, metrics_dir: str | Path | None = None) -> Change:
    """Write traffic.yaml and analysis.json, then commit them (and ``extra``) in one commit.
    On a failed commit the files are put back as HEAD had them."""
    gitops.require_identity(root)
    base = Path(root) / folder(spec)
    pin = f"{folder(spec)}/{pinning.PIN_FILE}"
    rel = [f"{folder(spec)}/{COMPONENT}", f"{folder(spec)}/{TRAFFIC}", f"{folder(spec)}/{ANALYSIS}", pin]
    before = {p: gitops.committed_bytes(root, p) for p in rel}
    pinned = pinning.champion_objects(root, spec, state.champion) if pinning.needed(spec, state.champion) else None
    if pinned is not None:
        write_atomic(base / pinning.PIN_FILE, dump_all(pinned, f"# Written by `sre-llm rollout`: champion "
                                                       f"{state.champion}'s revision, recreated from git.\n"))
    else:
        (base / pinning.PIN_FILE).unlink(missing_ok=True)
    write_atomic(base / COMPONENT, component(pinned is not None))
    write_atomic(base / TRAFFIC, traffic_patch(spec, state, (state.champion,) if pinned is not None else ()))
    write_atomic(base / ANALYSIS, json.dumps({**report, "failed_checks": state.failed_checks}, indent=2, sort_keys=True) + "\n")
    rel = [p for p in rel if _on_disk(root, p) != before[p]]  # only what this change changes
    paths = rel + list(extra or [])
    try:
        commit = gitops.commit_paths(root, paths, message)
    except BadInput:
        for p, data in before.items():
            if data is None:
                (Path(root) / p).unlink(missing_ok=True)
            else:
                write_atomic(Path(root) / p, data)
        raise
    write_metrics(metrics_dir, spec, state)
    return Change(state, report.get("decision", ""), commit, paths, message)


def _on_disk(root: str | Path, rel: str) -> bytes | None:
    path = Path(root) / rel
    return path.read_bytes() if path.exists() else None


def _message(subject: str, state: State, lines: list[str], decision: str) -> str:
    trailers = [f"Rollout-Model: {state.model}", f"Rollout-Decision: {decision}", f"Rollout-Phase: {state.phase}",
                f"Rollout-Stage: {state.stage or '-'}", f"Champion: {state.champion}",
                f"Challenger: {state.challenger or '-'}", f"Challenger-Percent: {state.percent}"]
    body = "\n".join(lines)
    return f"{subject}\n\n" + (body + "\n\n" if body else "") + "\n".join(trailers) + "\n"


# ── transitions ─────────────────────────────────────────────────────────────────────────────────


def registry_aliases(root: str | Path, model: str) -> dict[str, str]:
    """champion / challenger from ``registry/<model>.yaml`` when the registry has the model."""
    try:
        from sre_llm.registry import index as ix
    except ImportError:  # the registry stage is optional for rollouts
        return {}
    found = ix.load(root, model)
    return dict(found.aliases) if found is not None else {}


def start(root: str | Path, spec: LoadedSpec, champion: str | None = None, challenger: str | None = None,
          now: datetime | None = None, metrics_dir: str | Path | None = None) -> Change:
    """Begin a rollout of the spec's version (the challenger) against the champion.

    Without a champion (first release) the version takes 100 % at once and the rollout is
    complete: the component then pins the split, so rendering a later version never moves
    traffic by itself.
    """
    release = spec.release
    if release.spec.deployment.rollout.engine == "flagger":
        raise BadInput("deployment.rollout.engine is flagger: the rendered Canary runs the rollout in the cluster "
                       "(Flagger owns the traffic split); set deployment.rollout.engine: gitops to use sre-llm rollout")
    model, version = release.metadata.name, release.metadata.version
    aliases = registry_aliases(root, model)
    challenger = challenger or aliases.get("challenger") or version
    if challenger != version:
        raise BadInput(f"the challenger must be the version the rendered template serves ({version}, from {spec.path}); "
                       f"got {challenger}: render the challenger's spec first")
    previous = read_state(root, spec)
    if previous is not None and previous.phase == "progressing":
        raise BadInput(f"a rollout of {model} {previous.challenger} is in progress ({previous.stage}, "
                       f"{previous.percent} %): advance or abort it first")
    # What serves now is what the last rollout left (complete: the new champion; rolled back or
    # aborted: the old one), before the registry's alias: traffic is the truth for traffic.
    champion = champion or (previous.champion if previous else None) or aliases.get("champion")
    t = iso(now or now_utc())
    if champion is None or champion == challenger:
        state = State(model, "complete", challenger, None, None, 0, t)
        subject = f"rollout: {model} {challenger} takes all traffic (first release, nothing to compare with)"
        return commit_state(root, spec, state, {"decision": "start"}, _message(subject, state, [], "start"),
                            metrics_dir=metrics_dir)
    first = tr.stages(release)[0]
    state = State(model, "progressing", champion, challenger, first.name, first.percent, t)
    subject = f"rollout: start {model} {challenger} against {champion}: {first.name} at {first.percent} %"
    return commit_state(root, spec, state, {"decision": "start"}, _message(subject, state, [], "start"),
                        metrics_dir=metrics_dir)


def advance(root: str | Path, spec: LoadedSpec, now: datetime | None = None, evidence: list[str] | None = None,
            report: dict[str, Any] | None = None, decision: str = "advance", percent: int | None = None,
            metrics_dir: str | Path | None = None) -> Change:
    """Move to the next stage (or to ``percent`` by hand); after the last one the challenger is
    the champion and the rollout is complete."""
    state = require_state(root, spec)
    if state.phase != "progressing":
        raise BadInput(f"the rollout of {state.model} is {state.phase}: nothing to advance")
    stages = tr.stages(spec.release)
    t = iso(now or now_utc())
    if percent is not None:
        tr.split(state.champion, state.challenger, percent)  # a bad split is refused before anything changes
        new = replace(state, percent=percent, stage_started=t, stage=f"manual-{percent}")
        subject = f"rollout: {state.model} {state.challenger} set by hand to {percent} %"
    else:
        i = stage_index(spec, state) if not (state.stage or "").startswith("manual-") else _after_manual(stages, state)
        if i + 1 < len(stages):
            nxt = stages[i + 1]
            new = replace(state, stage=nxt.name, percent=nxt.percent, stage_started=t)
            subject = f"rollout: {state.model} {state.challenger} {state.percent} % → {nxt.percent} % ({nxt.name})"
        else:
            new = State(state.model, "complete", state.challenger or state.champion, None, None, 0, t, state.failed_checks)
            subject = (f"rollout: {state.model} {state.challenger} complete, now the champion "
                       f"(promote it in the registry: sre-llm registry promote)")
    rep = {**(report or {}), "decision": decision}
    return commit_state(root, spec, new, rep, _message(subject, new, evidence or [], decision), metrics_dir=metrics_dir)


def _after_manual(stages: list[tr.Stage], state: State) -> int:
    # After a manual percent, continue with the first planned stage above it.
    below = [i for i, s in enumerate(stages) if s.percent <= state.percent]
    return below[-1] if below else -1


def hold(root: str | Path, spec: LoadedSpec, report: dict[str, Any], failed: bool, evidence: list[str],
         metrics_dir: str | Path | None = None) -> Change:
    """Record an analysis that moves nothing (traffic unchanged; only analysis.json changes)."""
    state = require_state(root, spec)
    new = replace(state, failed_checks=state.failed_checks + (1 if failed else 0))
    why = report.get("reason", "")
    subject = f"rollout: {state.model} {state.challenger} hold at {state.percent} % ({why})"
    return commit_state(root, spec, new, {**report, "decision": "hold"}, _message(subject, new, evidence, "hold"),
                        metrics_dir=metrics_dir)


def roll_back(root: str | Path, spec: LoadedSpec, report: dict[str, Any], evidence: list[str],
              now: datetime | None = None, automatic: bool = True, metrics_dir: str | Path | None = None) -> Change:
    """All traffic to the champion. Automatic: the challenger is marked rolled back in the
    registry (when it has the model), an audit event is written and the rollback metric set."""
    from sre_llm import audit

    state = require_state(root, spec)
    if state.phase != "progressing":
        raise BadInput(f"the rollout of {state.model} is {state.phase}: nothing to roll back")
    decision = "rollback" if automatic else "abort"
    new = State(state.model, "rolled-back" if automatic else "aborted", state.champion, state.challenger, state.stage,
                0, iso(now or now_utc()), state.failed_checks + (1 if automatic else 0))
    extra = _mark_failed(root, state) if automatic else []
    record = audit.append(f"rollout-{decision}", f"{state.model}@{state.challenger}", {},
                          {"champion": state.champion, "stage": state.stage, "percent": state.percent,
                           "failed_checks": new.failed_checks, "reason": report.get("reason", "")}, root=root)
    log = audit.log_path(root)
    if log.resolve().is_relative_to(Path(root).resolve()):
        rel = log.resolve().relative_to(Path(root).resolve()).as_posix()
        if not gitops.is_ignored(root, rel):
            extra.append(rel)
    verb = "roll back" if automatic else "abort"
    subject = f"rollout: {verb} {state.model} {state.challenger} at {state.percent} %, all traffic to {state.champion}"
    lines = [*evidence, f"Audit: seq {record['seq']} {record['hash']}"]
    return commit_state(root, spec, new, {**report, "decision": decision}, _message(subject, new, lines, decision),
                        extra=extra, metrics_dir=metrics_dir)


def _mark_failed(root: str | Path, state: State) -> list[str]:
    """Registry: the challenger's status becomes rolled-back and the alias is removed."""
    try:
        from sre_llm.registry import index as ix
        from sre_llm.registry.service import open_registry
    except ImportError:
        return []
    if ix.load(root, state.model) is None:
        return []
    reg = open_registry(root)
    with reg.locked(state.model):
        index = reg.load(state.model)
        entry = index.get(state.challenger or "")
        if entry is None:
            return []
        entry.status = "rolled-back"
        if index.aliases.get("challenger") == entry.version:
            del index.aliases["challenger"]
        path = ix.save(root, index)
    return [reg.rel(path)]
