"""``sre-llm retrain``: one turn of the continuous-learning loop.

champion's data ─► merged dataset (old examples keep their split: checked) ─► enough new? ─►
train (warm start from the champion, or full from the base, per ``spec.retrain``) ─► challenger
and champion answer the same rows (the champion's frozen test split + the new test slice) ─►
McNemar's test on the paired answers ─► register the challenger ─► better and every gate passed:
sign it and commit its promotion on a new branch (the workflow opens the pull request); else the
report says why. Every turn leaves ``runs/<name>/retrain/<stamp>/report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput, CheckFailed, SreLlmError
from sre_llm.retrain import data as rdata
from sre_llm.retrain import mcnemar
from sre_llm.retrain.report import markdown

Progress = Callable[[str], None]
MODES = ("auto", "incremental", "full")


class _Quiet:
    """A training reporter that forwards notes and the end to ``progress`` only."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def start(self, info: dict[str, Any]) -> None:
        self.progress(f"training run {info.get('run_id')} ({info.get('log')})")

    def rows(self, rows: list[dict[str, Any]]) -> None:
        return None

    def note(self, message: str) -> None:
        self.progress(message)

    def end(self, info: dict[str, Any]) -> None:
        self.progress(f"training {info.get('status')}")


@dataclass
class Outcome:
    report: dict[str, Any]
    paths: list[Path]

    @property
    def promoted(self) -> bool:
        return self.report["outcome"] == "promoted"


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(root: Path, name: str) -> list[dict[str, Any]]:
    """Earlier retrain reports of ``name``, oldest first."""
    folder = root / "runs" / name / "retrain"
    out = []
    for p in sorted(folder.glob("*/report.json")) if folder.is_dir() else []:
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    return out


def champion_since(index, entry) -> float:
    """When the current champion became champion (its promotion), else when it was registered."""
    for move in reversed(index.history):
        if move.alias == "champion" and move.version == entry.version:
            return _ts(move.time) or 0.0
    return _ts(entry.created) or 0.0


def choose_mode(mode: str, settings, now: float, since: float, past: list[dict[str, Any]]) -> tuple[str | None, str]:
    """(``incremental`` | ``full`` | None to skip, the reason) from the schedule in ``spec.retrain``."""
    from sre_llm.spec.types import duration_seconds

    if mode != "auto":
        return mode, f"--mode {mode}"
    age = now - since
    if age < duration_seconds(settings.incremental_every):
        return None, (f"the champion is {age / 86400:.1f} days old, under retrain.incremental_every "
                      f"{settings.incremental_every}: nothing to do yet")
    fulls = [_ts(r.get("started")) for r in past if r.get("mode") == "full" and r.get("challenger")]
    last_full = max([t for t in fulls if t] or [since])
    if now - last_full >= duration_seconds(settings.full_every):
        return "full", f"the last full training is {(now - last_full) / 86400:.1f} days old (retrain.full_every {settings.full_every})"
    return "incremental", f"within retrain.full_every {settings.full_every} of the last full training"


def correct(result: dict[str, Any]) -> list[bool]:
    """Per row: function and parameters right, on the answers the gates judge (grounded or raw)."""
    grounded = result.get("judged_on") == "grounded"
    return [bool(((p.get("grounded") or {}) if grounded else p)["judgement"]["parameters_ok"]) for p in result["predictions"]]


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def retrain(spec: str, root: str | Path = ".", mode: str = "auto", now: float | None = None,
            progress: Progress = lambda m: None) -> Outcome:
    """One turn of the loop for ``spec`` in the GitOps repository at ``root``."""
    from sre_llm.dataset.build import build
    from sre_llm.registry.service import open_registry
    from sre_llm.spec.load import load_spec
    from sre_llm.spec.retrain import RetrainSpec

    if mode not in MODES:
        raise BadInput(f"--mode {mode}: choose one of {', '.join(MODES)}")
    root = Path(root)
    now = time.time() if now is None else now
    release = load_spec(spec).release
    name = release.metadata.name
    settings = release.spec.retrain or RetrainSpec()
    reg = open_registry(root)
    index = reg.load(name)
    champ = index.get("champion")
    if champ is None:
        raise BadInput(f"{name} has no champion: train, register and promote a first version before retraining")
    old_dir = rdata.find_dataset(root, release.spec.dataset.name, champ.dataset.digest)
    report: dict[str, Any] = {"format": "sre-llm/retrain/v1", "model": name, "spec": str(spec), "started": _iso(now),
                              "champion": champ.version, "challenger": None, "mode": None, "significance": settings.significance,
                              "champion_dataset": str(old_dir.relative_to(root) if old_dir.is_relative_to(root) else old_dir)}
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = root / "runs" / name / "retrain" / stamp
    past = history(root, name)

    def finish(outcome: str, reason: str) -> Outcome:
        report.update(outcome=outcome, reason=reason, finished=_iso(time.time()))
        return Outcome(report, _write(out_dir, report))

    chosen, why = choose_mode(mode, settings, now, champion_since(index, champ), past)
    report["schedule"] = why
    if chosen is None:
        return finish("skipped", why)
    report["mode"] = chosen

    progress(f"building the merged dataset (champion {champ.version} trained on {old_dir.name})")
    built = build(release, root=root, spec_path=str(spec))
    report["dataset"] = {"digest": built.digest, "collection_ratio": _collection(built.card)}
    delta = rdata.compare(rdata.splits_of(old_dir), rdata.splits_of(built.path))
    report["data"] = delta.summary()
    if delta.moved:
        head, before, after = delta.moved[0]
        report.update(outcome="failed", reason=f"{len(delta.moved)} old example(s) changed split (first: {head!r} "
                      f"{before} → {after}): the frozen test set would leak; were dataset.split fractions changed?")
        _write(out_dir, report)
        raise CheckFailed(report["reason"], code="split_moved", details={"report": str(out_dir / "report.json")})
    if delta.new_count < settings.min_new_examples:
        return finish("refused", f"{delta.new_count} new example(s) since the champion's data, fewer than "
                                 f"retrain.min_new_examples {settings.min_new_examples}: not trained")

    try:
        return _train_and_decide(spec, root, release, settings, reg, index, champ, old_dir, delta, chosen,
                                 report, out_dir, progress, finish)
    except SreLlmError as exc:
        report.update(outcome="failed", reason=str(exc).splitlines()[0], finished=_iso(time.time()))
        _write(out_dir, report)
        raise


def _train_and_decide(spec, root, release, settings, reg, index, champ, old_dir, delta, chosen, report, out_dir,
                      progress, finish) -> Outcome:
    from sre_llm.evaluate import harness
    from sre_llm.evaluate.gates import eval_config_path
    from sre_llm.execute.train import train
    from sre_llm.registry.service import register

    name = release.metadata.name
    champ_dir = reg.store.local_tree(champ.artifact.digest)
    epochs = settings.incremental_epochs if chosen == "incremental" else None
    progress(f"training ({chosen}{' from champion ' + champ.version if chosen == 'incremental' else ' from the base model'})")
    record = train(spec, _Quiet(progress), base=root, warm_start=champ_dir if chosen == "incremental" else None, epochs=epochs)
    run_dir = Path(record["output_dir"]).parent
    report["run"] = str(run_dir)

    # The same rows for both: the champion's frozen test split, then the new test slice.
    frozen = rdata.read_rows(old_dir / "test.jsonl")
    fresh = delta.new["test"]
    test_file = out_dir / "test.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    test_file.write_text("".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in frozen + fresh))
    config = eval_config_path(spec, root / "rendered")
    progress(f"evaluating challenger and champion on {len(frozen)} frozen + {len(fresh)} new test examples")
    ours = harness.evaluate(config, run_dir / "output", test=test_file, root=root, baseline="none")
    harness.write_results(ours, run_dir / "eval")
    theirs = harness.evaluate(config, champ_dir, test=test_file, root=root, baseline="none", adversarial=False,
                              latency_samples=0, answer_format=champ.dataset.answer_format)
    harness.write_results(theirs, out_dir / "champion-eval")
    a, b = correct(theirs), correct(ours)
    mc = mcnemar.paired(a, b)
    n = len(frozen)
    report["mcnemar"] = mc.to_dict()
    report["slices"] = {
        "frozen test": {"examples": n, "champion": _share(a[:n]), "challenger": _share(b[:n])},
        "new test slice": {"examples": len(fresh), "champion": _share(a[n:]), "challenger": _share(b[n:])},
        "all": {"examples": len(a), "champion": _share(a), "challenger": _share(b)},
    }

    existing = {v.version for v in index.versions}
    bump = "patch" if release.metadata.version in existing else None
    reg_result = register(reg, spec, run_dir / "output", metrics_path=run_dir / "eval" / "eval.json",
                          run_path=run_dir / "run.json", bump=bump)
    entry = reg_result.entry
    report["challenger"] = entry.version
    report["gates"] = [_gate_text(g) for g in ours["gates"]]
    report["gates_passed"] = bool(ours["passed"]) and entry.gates_passed
    better = mc.better(settings.significance)
    if not better:
        verdict = ("worse" if mc.worse(settings.significance) else "not significantly better")
        return finish("refused", f"challenger {entry.version} is {verdict} than champion {champ.version} on the same "
                                 f"{mc.n} examples: right where the champion was wrong {mc.challenger_only}×, wrong where "
                                 f"it was right {mc.champion_only}× (McNemar p = {mc.p_value:.4g}, needs < {settings.significance} "
                                 "and more wins than losses)")
    if not report["gates_passed"]:
        return finish("refused", f"challenger {entry.version} is better (McNemar p = {mc.p_value:.4g}) but did not pass "
                                 f"its gates: {ours.get('failure') or 'gate figures missing'}")
    progress(f"signing {entry.version} and committing its promotion on a branch")
    branch, commit = _promotion_branch(reg, root, name, entry.version, settings.branch_prefix)
    report.update(branch=branch, commit=commit)
    return finish("promoted", f"challenger {entry.version} is significantly better than champion {champ.version} "
                              f"(McNemar p = {mc.p_value:.4g} < {settings.significance}: {mc.challenger_only} wins, "
                              f"{mc.champion_only} losses) and passed every gate; promotion committed on branch {branch}")


def _gate_text(g: dict[str, Any]) -> str:
    from sre_llm.evaluate.gates import GateResult

    return GateResult(**g).describe()


def _promotion_branch(reg, root: Path, name: str, version: str, prefix: str) -> tuple[str, str]:
    """Sign the challenger here, then promote it in a temporary work tree on a new branch from HEAD
    (the registration and signature travel with it): the user's HEAD and files stay as they are."""
    from sre_llm import gitops
    from sre_llm.registry import index as ix
    from sre_llm.registry import release as rel
    from sre_llm.registry.service import Registry

    gitops.require_identity(root)
    rel.sign(reg, name, version)
    entry = reg.load(name).get(version)
    branch = f"{prefix}-{name}-{version}"
    tmp = Path(tempfile.mkdtemp(prefix="sre-llm-promote-"))
    tree = tmp / "tree"
    gitops.add_worktree(root, tree, branch)
    try:
        from sre_llm.spec.load import load_spec

        signing = load_spec(reg.abs(entry.spec.path)).release.spec.signing
        carried = [ix.index_path(root, name), root / ix.REGISTRY_DIR / name, reg.abs(entry.spec.path),
                   *(reg.abs(p) for p in [signing.public_key, *signing.certificate_chain] if p)]
        if reg.inside(reg.audit_log):
            carried.append(reg.audit_log)
        for src in carried:
            if not src.exists() or not reg.inside(src):
                continue
            dest = tree / reg.rel(src)
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
        audit_log = tree / reg.rel(reg.audit_log) if reg.inside(reg.audit_log) else reg.audit_log
        moved = rel.promote(Registry(tree, reg.store, audit_log), name, version)
    finally:
        gitops.remove_worktree(root, tree)
        shutil.rmtree(tmp, ignore_errors=True)
    return branch, moved.commit or ""


def _collection(card: dict[str, Any]) -> float | None:
    from sre_llm.retrain.metrics import collection_ratio

    return collection_ratio(card)


def _write(out_dir: Path, report: dict[str, Any]) -> list[Path]:
    from sre_llm.fsutil import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "report.json", json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    write_atomic(out_dir / "report.md", markdown(report))
    return [out_dir / "report.json", out_dir / "report.md"]
