"""What merging a spec change would do, computed before any GPU time is spent.

The head side is the spec in the working tree, rendered in memory (:func:`sre_llm.api.render_files`);
the base side is what is *committed* at the base commit: the spec and ``rendered/``. The committed
rendered files are the right thing to compare with, not a fresh render of the old spec: they are
what Flux applied and what the champion was trained from (``render --check`` keeps them current),
so a change of template or of sre-llm itself shows up here as it would on the cluster.

Whether to retrain is decided on a digest of the *training inputs* only: the spec's base model,
dataset settings (less encryption, which changes no byte the model sees) and training sections,
the release version (a new version is a new model), the sre-llm version that rendered it (its
defaults shape the data too), and the rendered LLaMA Factory configuration (train.yaml less its
per-version output_dir, dataset_info.json, the DeepSpeed file). New *data*
under the same settings is the scheduled retrain's business, not the pull request's. Everything
else (serving, rollout, gates, signing) re-renders and re-deploys without a retrain.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sre_llm import gitops
from sre_llm.errors import BadInput, SreLlmError
from sre_llm.spec.model import ModelRelease

Action = Literal["retrain", "re-render", "none"]
SUMMARY = {"retrain": "retrain", "re-render": "re-render, no retrain", "none": "no change"}
# Runs a CPU release trains on, when the spec names no runner: GitHub's hosted runner.
HOSTED_RUNNER = ["ubuntu-24.04"]
GPU_RUNNER = ["self-hosted", "linux", "x64", "gpu"]
# Rendered files that are part of the training configuration (the rest is evaluation or deployment).
TRAINING_FILES = ("train.yaml", "dataset_info.json")
RUNS_CONSIDERED = 5  # the estimate is the median of this many latest successful runs
MAX_REASONS = 12


@dataclass(frozen=True)
class FileChange:
    path: str
    status: Literal["created", "changed", "removed"]


@dataclass(frozen=True)
class GateChange:
    gate: str
    bound: Literal["min", "max"]
    old: float | None
    new: float


@dataclass(frozen=True)
class Stage:
    name: str
    percent: int
    duration: str


@dataclass(frozen=True)
class Estimate:
    """The retrain's cost from the runs on record (``runs/<name>/*/*/run.json``): the median of the
    latest successful ones, since one slow run (a cold cache, a busy node) should not set the price."""

    runs: int
    latest_run: str | None
    gpus: int
    wall_hours: float | None
    gpu_hours: float | None
    gpu_hour_cost: float | None
    currency: str
    cost: float | None


@dataclass(frozen=True)
class Plan:
    spec: str
    name: str
    version: str
    base_version: str | None
    base_ref: str
    base_commit: str
    base_how: str
    action: Action
    reasons: list[str]
    training_digest: dict[str, str | None]
    files: list[FileChange]
    unchanged: int
    gates: list[GateChange]
    rollout: list[Stage]
    rollback: dict[str, Any]
    runner: list[str]
    device: str
    review: bool
    estimate: Estimate
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return SUMMARY[self.action]

    @property
    def retrain(self) -> bool:
        return self.action == "retrain"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` report; ``runner`` and ``retrain`` are what workflows read."""
        data = asdict(self)
        data.update(summary=self.summary, retrain=self.retrain)
        return data


def plan(spec: str | Path, base: str | None = None, root: str | Path = ".",
         gpu_hour_cost: float | None = None, templates: str | Path | None = None) -> Plan:
    """Compare ``spec`` in the working tree (rendered with ``templates`` over the built-in ones, as
    ``render`` would) with what is committed at ``base`` (default: see :func:`resolve_base`) in the
    git repository ``root``; read only, nothing is written."""
    from sre_llm import api

    root = Path(root)
    (loaded,) = api.validate([spec])
    if not gitops.is_repo(root):
        raise BadInput(f"{root}: not a git repository: plan compares with a commit (pass --root)")
    ref, commit, how = resolve_base(root, base)
    release = loaded.release
    rel_spec = _repo_path(Path(spec), root)
    head_files = {f.path: f.text.encode() for f in api.render_files([spec], templates)}

    base_release, base_problem = _base_release(root, commit, rel_spec, ref)
    base_files = gitops.tree_files(root, commit, f"rendered/{release.metadata.name}")
    files, unchanged = _file_changes(head_files, base_files)

    name = release.metadata.name
    head_inputs = training_inputs(release, _version_files(head_files, name, release.metadata.version))
    base_inputs = None
    if base_release is not None:
        found = _version_files(base_files, name, base_release.metadata.version)
        if "train.yaml" in found:
            base_inputs = training_inputs(base_release, found)
    reasons = _retrain_reasons(base_inputs, head_inputs, base_problem)
    action: Action = "retrain" if reasons else ("re-render" if files else "none")

    ci = release.spec.ci
    t = release.spec.training
    gpus = 0 if t.device == "cpu" else t.distributed.nodes * t.distributed.gpus_per_node
    from sre_llm.deploy import traffic

    ro = release.spec.deployment.rollout
    return Plan(
        spec=rel_spec, name=name, version=release.metadata.version,
        base_version=base_release.metadata.version if base_release else None,
        base_ref=ref, base_commit=commit, base_how=how, action=action, reasons=reasons,
        training_digest={"base": digest(base_inputs) if base_inputs else None, "head": digest(head_inputs)},
        files=files, unchanged=unchanged,
        counts={s: sum(1 for f in files if f.status == s) for s in ("created", "changed", "removed")},
        gates=_gate_changes(base_release, release),
        rollout=[Stage(s.name, s.percent, _duration(s.duration_s)) for s in traffic.stages(release)],
        rollback=ro.rollback.model_dump(mode="json"),
        runner=list(ci.runner) or (HOSTED_RUNNER if t.device == "cpu" else GPU_RUNNER),
        device=t.device, review=ci.review,
        estimate=estimate(root, name, gpus, ci.gpu_hour_cost if gpu_hour_cost is None else gpu_hour_cost, ci.currency),
    )


def resolve_base(root: Path, base: str | None) -> tuple[str, str, str]:
    """(the ref as shown, its commit, how it was chosen). Without ``base``: the merge base with
    ``origin/main`` (what GitHub compares a pull request with), else with ``main`` when HEAD has
    left it, else ``HEAD~1`` (a commit on main itself: what that commit changed)."""
    if base is not None:
        commit = gitops.resolve(root, base)
        if commit is None:
            raise BadInput(f"--base {base}: no such commit in {root} (fetch it, e.g. `git fetch origin main`)")
        return base, commit, "given with --base"
    for branch in ("origin/main", "main"):
        if gitops.resolve(root, branch) is None:
            continue
        mb = gitops.merge_base(root, "HEAD", branch)
        if mb is not None and (branch == "origin/main" or mb != gitops.resolve(root, "HEAD")):
            return branch, mb, f"merge base with {branch}"
    commit = gitops.resolve(root, "HEAD~1")
    if commit is None:
        raise BadInput(f"{root}: no base to compare with: no origin/main, no main apart from HEAD and no HEAD~1; "
                       "pass --base REF")
    return "HEAD~1", commit, "HEAD~1 (no origin/main, and HEAD is on main)"


def _repo_path(spec: Path, root: Path) -> str:
    try:
        return spec.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise BadInput(f"{spec}: not inside the repository {root} (pass --root)") from None


def _base_release(root: Path, commit: str, rel_spec: str, ref: str) -> tuple[ModelRelease | None, str | None]:
    """The spec as committed at the base, validated by this sre-llm; or why there is none."""
    from sre_llm.spec.load import parse_spec

    raw = gitops.committed_bytes(root, rel_spec, commit)
    if raw is None:
        return None, f"{rel_spec} is new (not at {ref})"
    try:
        return parse_spec(raw.decode("utf-8"), f"{ref}:{rel_spec}"), None
    except (SreLlmError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"the spec at {ref} does not validate with this sre-llm ({first})"


def _file_changes(head: dict[str, bytes], base: dict[str, bytes]) -> tuple[list[FileChange], int]:
    """Created / changed / removed, by the writer's rule: a folder that receives files is owned by
    sre-llm, so a base file in it that the head no longer renders is removed; other folders (an
    older version's) are left alone, as ``render`` leaves them."""
    owned = {str(PurePosixPath(p).parent) + "/" for p in head}
    out = [FileChange(p, "created" if p not in base else "changed") for p in sorted(head) if base.get(p) != head[p]]
    out += [FileChange(p, "removed") for p in sorted(base) if p not in head and any(p.startswith(o) for o in owned)]
    unchanged = sum(1 for p in head if base.get(p) == head[p])
    return sorted(out, key=lambda c: c.path), unchanged


def _version_files(files: dict[str, bytes], name: str, version: str) -> dict[str, bytes]:
    prefix = f"rendered/{name}/{version}/"
    return {p[len(prefix):]: b for p, b in files.items() if p.startswith(prefix) and "/" not in p[len(prefix):]}


def training_inputs(release: ModelRelease, files: dict[str, bytes]) -> dict[str, Any]:
    """Everything that, changed, makes a different model from the same data (see the module doc)."""
    from ruamel.yaml import YAML

    spec = release.spec
    config = dict(YAML(typ="safe").load(files.get("train.yaml", b"").decode()) or {})
    config.pop("output_dir", None)  # per version: the version is compared on its own
    rendered: dict[str, Any] = {"train.yaml": config}
    for name, data in sorted(files.items()):
        if name == "dataset_info.json" or name.startswith("ds_z"):
            rendered[name] = json.loads(data)
    lock = json.loads(files.get("release.lock.json", b"{}"))
    return {
        # A new sre-llm may change defaults that are never rendered (how answers are written, how
        # data is labelled): the version that rendered the lock counts as a training input.
        "sre-llm": lock.get("generated_by"),
        "metadata.version": release.metadata.version,
        "spec.base_model": spec.base_model.model_dump(mode="json"),
        # Not inputs of the model: how data is kept (encryption, retention), where training runs.
        "spec.dataset": spec.dataset.model_dump(mode="json", exclude={"encryption", "retention"}),
        "spec.training": spec.training.model_dump(mode="json", exclude={"cluster"}),
        "rendered": rendered,
    }


def digest(inputs: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}"))
        return out or {prefix: {}}
    return {prefix: value}


def _show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, sort_keys=True)


def _retrain_reasons(base: dict[str, Any] | None, head: dict[str, Any], problem: str | None) -> list[str]:
    """One line per training input that differs: the spec's fields first; the rendered configuration
    only where no spec field explains it (a template or an sre-llm upgrade)."""
    if base is None:
        return [problem or "nothing is rendered for this version at the base: no model was trained from it"]
    spec_keys = [k for k in head if k != "rendered"]
    old = {k: v for key in spec_keys for k, v in _flat(base[key], key).items()}
    new = {k: v for key in spec_keys for k, v in _flat(head[key], key).items()}
    lines = [f"`{k}`: {_show(old.get(k))} → {_show(new.get(k))}" for k in sorted(old.keys() | new.keys())
             if old.get(k) != new.get(k)]
    if not lines:
        old_r, new_r = _flat(base["rendered"], "rendered"), _flat(head["rendered"], "rendered")
        lines = [f"`{k.removeprefix('rendered.')}`: {_show(old_r.get(k))} → {_show(new_r.get(k))}"
                 for k in sorted(old_r.keys() | new_r.keys()) if old_r.get(k) != new_r.get(k)]
    if len(lines) > MAX_REASONS:
        lines = lines[:MAX_REASONS] + [f"… and {len(lines) - MAX_REASONS} more"]
    return lines


_GATES = (("remediation_accuracy", "min"), ("parameter_accuracy", "min"),
          ("false_positive_rate", "max"), ("p95_latency_ms", "max"))


def _gate_changes(base: ModelRelease | None, head: ModelRelease) -> list[GateChange]:
    new = head.spec.evaluation.gates
    old = base.spec.evaluation.gates if base is not None else None
    return [GateChange(g, bound, getattr(old, g) if old else None, getattr(new, g))  # type: ignore[arg-type]
            for g, bound in _GATES if old is None or getattr(old, g) != getattr(new, g)]


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def estimate(root: Path, name: str, gpus: int, gpu_hour_cost: float | None, currency: str) -> Estimate:
    """GPU-hours and cost of one more run, from the successful runs of this release on record."""
    records = []
    for path in sorted((root / "runs" / name).glob("*/*/run.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run being written, or a broken one: not evidence of a price
        if record.get("status") == "succeeded" and isinstance(record.get("duration_s"), (int, float)):
            records.append(record)
    records.sort(key=lambda r: str(r.get("run_id", "")))
    recent = records[-RUNS_CONSIDERED:]
    if not recent:
        return Estimate(0, None, gpus, None, None, gpu_hour_cost, currency, None)
    wall = statistics.median(r["duration_s"] / 3600 for r in recent)
    # Older records have no gpu_hours: their wall time times the GPUs this spec trains on.
    gpu_hours = statistics.median(
        r["gpu_hours"] if isinstance(r.get("gpu_hours"), (int, float)) else r["duration_s"] / 3600 * gpus
        for r in recent)
    cost = None if gpu_hour_cost is None else round(gpu_hours * gpu_hour_cost, 2)
    return Estimate(len(recent), str(recent[-1].get("run_id")), gpus, round(wall, 4), round(gpu_hours, 4),
                    gpu_hour_cost, currency, cost)
