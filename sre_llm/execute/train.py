"""``sre-llm train``: preflight, then one LLaMA Factory run in a fresh run folder, recorded.

Order matters for the user's time: everything that can be checked in a second (spec, rendered
files, packages, device, model on disk, dataset parses) is checked before anything slow (building
the tiny base model, starting LLaMA Factory). ``--dry-run`` stops after the checks.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput, CheckFailed, SreLlmError
from sre_llm.execute import config as cfgmod
from sre_llm.execute import data, process, runs
from sre_llm.execute.digest import tree_digest
from sre_llm.execute.progress import LogTail, Reporter
from sre_llm.preflight import Machine, Problem, preflight

TAIL_LINES = 25


class PreflightFailed(BadInput):
    """What cannot run here (exit 2), one line per setting, each with the alternative."""

    code = "cannot_run_here"

    def __init__(self, spec: str, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(f"{spec}: {p}" for p in problems), path=spec,
                         details={"problems": [p.__dict__ for p in problems]})

    def lines(self) -> list[str]:
        return str(self).splitlines()


class Interrupted(SreLlmError):
    """Stopped by Ctrl-C or SIGTERM; the run record says so (exit 130, like a shell)."""

    exit_code = 130
    code = "interrupted"


def machine_for(release) -> Machine:
    """This machine, as training will see it: the hub is always off for the trainer. For a CPU run
    the CUDA probe (an ``import torch``, seconds) is skipped: no GPU setting can apply."""
    import importlib.util

    if release.spec.training.device == "cpu":
        names = ("torch", "bitsandbytes", "deepspeed", "flash_attn", "badam", "llamafactory")
        pkgs = frozenset(n for n in names if importlib.util.find_spec(n) is not None)
        return Machine(0, False, pkgs, True)
    return replace(Machine.probe(), hub_offline=True)


class Plan:
    """Everything decided before training starts."""

    def __init__(self, spec: str, base: Path, resume: bool):
        from sre_llm import api

        self.spec, self.base = spec, base
        (self.loaded,) = api.validate([spec])
        self.release = self.loaded.release
        meta = self.release.metadata
        self.rendered_dir = base / "rendered" / meta.name / meta.version
        self.rerendered = False
        if api.render([spec], check=True, base=base).drift:
            api.render([spec], base=base)
            self.rerendered = True
        self.resume_from: tuple[Path, Path] | None = None
        if resume:
            run, ckpt = runs.resume_point(base, meta.name, meta.version)
            old = runs.read_record(run)
            if old.get("spec", {}).get("digest") != self.loaded.digest:
                raise BadInput(f"--resume: {spec} changed since run {run.name}; train afresh without --resume")
            self.resume_from = (run, ckpt)
        self.train_cfg = cfgmod.read_yaml(self.rendered_dir / "train.yaml")
        info_path = self.rendered_dir / "dataset_info.json"
        try:
            self.info = json.loads(info_path.read_text())
        except FileNotFoundError:
            raise BadInput(f"{info_path}: missing; run `sre-llm render {spec}`") from None
        self.used = data.splits_used(self.train_cfg, self.info)
        ds_name = self.release.spec.dataset.name
        self.dataset_shown = f"datasets/{ds_name}/current"
        self.dataset_src = (base / self.dataset_shown).resolve()
        bm = self.release.spec.base_model
        self.model_path = None if bm.path is None else (Path(bm.path) if Path(bm.path).is_absolute() else base / bm.path)
        self.build_tiny = bool(bm.builtin == "tiny" and self.model_path and not (self.model_path / "config.json").is_file())

    def problems(self) -> list[Problem]:
        found = preflight(self.release, machine_for(self.release), self.base)
        if self.build_tiny:  # not a problem: train builds it first
            found = [p for p in found if p.setting != "spec.base_model.path"]
        enc = self.release.spec.dataset.encryption
        hint = f"build it with `sre-llm dataset build {self.spec}`"
        found += data.check(self.dataset_src, self.dataset_shown, self.train_cfg, self.info, enc is not None, hint)
        return found


def dry_run(spec: str, base: Path = Path(".")) -> dict[str, Any]:
    """Only the checks: raise :class:`PreflightFailed` or say what a run would do."""
    plan = Plan(spec, base, resume=False)
    problems = plan.problems()
    if problems:
        raise PreflightFailed(spec, problems)
    return {"ok": True, "spec": spec, "rendered": runs.rel(plan.rendered_dir, base), "rerendered": plan.rerendered,
            "dataset": plan.dataset_shown, "builds_base_model": plan.build_tiny,
            "model": str(plan.model_path or plan.release.spec.base_model.name)}


def train(spec: str, reporter: Reporter, resume: bool = False, base: Path = Path("."),
          warm_start: Path | None = None, epochs: float | None = None) -> dict[str, Any]:
    """Run the training; return the final run record, or raise (exit 1 failed, 2 cannot run, 130 stopped).

    ``warm_start`` (`sre-llm retrain`'s incremental mode) starts from that model folder (a full
    fine-tune) or keeps training that LoRA adapter instead of the base; ``epochs`` overrides
    num_train_epochs for such a run (new data on a trained model needs fewer passes)."""
    plan = Plan(spec, base, resume)
    plan.warm_start, plan.epochs = warm_start, epochs
    if plan.rerendered:
        reporter.note(f"rendered files for {spec} were out of date: re-rendered into {runs.rel(plan.rendered_dir, base)}")
    problems = plan.problems()
    if problems:
        raise PreflightFailed(spec, problems)
    if plan.build_tiny:
        _build_tiny(plan, reporter)

    meta = plan.release.metadata
    run_dir = runs.create_run_dir(base, meta.name, meta.version)
    out, log = run_dir / "output", run_dir / "train.log"
    folder, private = data.prepare(plan.dataset_src, run_dir / "data", plan.info, plan.used,
                                   _identity(plan), base)
    try:
        return _run(plan, reporter, run_dir, out, log, folder, private is not None)
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def _identity(plan: Plan) -> str | None:
    enc = plan.release.spec.dataset.encryption
    return enc.identity if enc else None


def _build_tiny(plan: Plan, reporter: Reporter) -> None:
    from sre_llm.basemodel.tiny import TinyConfig, build_tiny

    fam = plan.release.spec.base_model.family
    reporter.note(f"building the tiny {fam} base model into {plan.model_path} "
                  f"(`sre-llm base-model tiny --family {fam} --out {plan.model_path}`, a few seconds)")
    build_tiny(plan.model_path, TinyConfig(family=fam))


def _run(plan: Plan, reporter: Reporter, run_dir: Path, out: Path, log: Path, dataset_dir: Path, decrypted: bool) -> dict[str, Any]:
    base = plan.base
    ckpt = plan.resume_from[1] if plan.resume_from else None
    cfg = cfgmod.run_config(plan.train_cfg, base, out, dataset_dir, ckpt)
    warm = getattr(plan, "warm_start", None)
    if warm is not None:
        key = "adapter_name_or_path" if cfg.get("finetuning_type") == "lora" else "model_name_or_path"
        cfg[key] = str(Path(warm).resolve())
    if getattr(plan, "epochs", None) is not None:
        cfg["num_train_epochs"] = float(plan.epochs)
    header = (f"# sre-llm run {run_dir.name}: {runs.rel(plan.rendered_dir / 'train.yaml', base)} "
              "with this run's paths.\n")
    (run_dir / "train.yaml").write_text(cfgmod.dump_yaml(cfg, header))
    env_file = plan.rendered_dir / "launcher.env"
    launcher = cfgmod.read_env_file(env_file) if env_file.is_file() else {}
    # In a PyTorchJob pod the operator's rendezvous (the job's own master service) wins over launcher.env.
    from os import environ

    from sre_llm.execute.cluster import launcher_from_job

    launcher = launcher_from_job(launcher, environ)
    argv = [process.llamafactory_cli(), "train", str((run_dir / "train.yaml").resolve())]

    bm = plan.release.spec.base_model
    started = time.time()
    record: dict[str, Any] = {
        "run_id": run_dir.name,
        "release": {"name": plan.release.metadata.name, "version": plan.release.metadata.version},
        "spec": {"path": plan.spec, "digest": plan.loaded.digest},
        "rendered": {"dir": runs.rel(plan.rendered_dir, base),
                     "train_yaml_digest": "sha256:" + _sha(plan.rendered_dir / "train.yaml")},
        "dataset": {"source": str(plan.dataset_src), "files": data.digest(dataset_dir, plan.used),
                    "decrypted": decrypted},
        # How the model answers (literal values or label references): eval and the gateway read
        # it from here (and from the registry lineage) to expand its answers right.
        "answer_format": _answer_format(plan),
        "base_model": {"name": bm.name, "path": str(plan.model_path) if plan.model_path else None,
                       "revision": bm.revision, "family": bm.family,
                       "digest": tree_digest(plan.model_path) if plan.model_path else None},
        "git": runs.git_state(base),
        # What the run occupies, so that `sre-llm plan` can price the next one (gpu_hours at the end).
        "resources": _resources(plan.release),
        "packages": runs.package_versions(),
        "command": argv, "launcher_env": launcher,
        "log": str(log), "output_dir": str(out),
        "resumed_from": {"run": str(plan.resume_from[0]), "checkpoint": str(ckpt)} if ckpt else None,
        "warm_start": {"from": str(warm), "epochs": cfg.get("num_train_epochs")} if warm is not None else None,
        "started_at": runs.iso(started), "ended_at": None, "duration_s": None,
        "status": "running", "exit_code": None,
    }
    record["dataset"]["digest"] = "sha256:" + _sha_text(json.dumps(record["dataset"]["files"], sort_keys=True))
    runs.write_record(run_dir, record)
    reporter.start({"run_id": run_dir.name, "run_dir": str(run_dir), "log": str(log), "config": str(run_dir / "train.yaml")})
    tail = LogTail(out / "trainer_log.jsonl")
    try:
        code = process.run(argv, log, cwd=base, env=process.child_env(launcher), poll=lambda: reporter.rows(tail.read()))
    except process.Stop as stop:
        _finish(record, run_dir, started, "interrupted", None)
        reporter.end({"status": "interrupted", "run_dir": str(run_dir)})
        raise Interrupted(f"stopped by {stop}; {run_dir} keeps its checkpoints: "
                          f"continue with `sre-llm train {plan.spec} --resume`") from None
    if code != 0:
        _finish(record, run_dir, started, "failed", code)
        reporter.end({"status": "failed", "exit_code": code, "run_dir": str(run_dir)})
        raise CheckFailed("\n".join(
            [f"training failed: llamafactory-cli exited with {code}; last lines of its output:"]
            + ["  " + line for line in process.tail(log, TAIL_LINES)] + [f"full log: {log}"]))
    _finish(record, run_dir, started, "succeeded", 0)
    record["serving_files"] = _serving_files(plan, Path(record["output_dir"]))
    runs.write_record(run_dir, record)
    reporter.end({"status": "succeeded", "run_dir": str(run_dir), "final": record["final"],
                  "adapter": record["adapter"]})
    return record


def _finish(record: dict[str, Any], run_dir: Path, started: float, status: str, code: int | None) -> None:
    out = Path(record["output_dir"])
    ended = time.time()
    record.update(status=status, exit_code=code, ended_at=runs.iso(ended), duration_s=round(ended - started, 2))
    # Wall clock × GPUs held: the unit GPUs are billed in, whatever share of the time they computed.
    record["gpu_hours"] = round((ended - started) / 3600 * record.get("resources", {}).get("gpus", 0), 4)
    record["final"] = runs.results(out)
    record["checkpoints"] = [str(c) for c in runs.checkpoints(out)]
    record["adapter"] = _artifact(out, ("adapter_config.json", "adapter_model.safetensors"))
    record["model"] = _artifact(out, ("config.json", "model.safetensors")) if record["adapter"] is None else None
    runs.write_record(run_dir, record)


def _serving_files(plan: Plan, out: Path) -> dict[str, str]:
    """LLaMA Factory's chat template and the trained tokenizer, inside the model folder: what any
    vLLM needs to serve the prompt training used (:mod:`sre_llm.execute.serving_files`)."""
    from sre_llm.execute import serving_files as sf

    source = sf.tokenizer_source(out, plan.model_path or plan.train_cfg["model_name_or_path"])
    return sf.write(out, plan.train_cfg["template"], source)


def _resources(release) -> dict[str, Any]:
    t = release.spec.training
    nodes, per_node = t.distributed.nodes, t.distributed.gpus_per_node
    return {"device": t.device, "nodes": nodes, "gpus_per_node": per_node,
            "gpus": 0 if t.device == "cpu" else nodes * per_node}


def _artifact(out: Path, names: tuple[str, ...]) -> dict[str, Any] | None:
    if not all((out / n).is_file() for n in names):
        return None
    from sre_llm.execute.digest import file_digest

    files = {n: file_digest(out / n) for n in names}
    return {"path": str(out), "files": files, "digest": "sha256:" + _sha_text(json.dumps(files, sort_keys=True))}


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _answer_format(plan: Plan) -> str:
    """How the training data writes its answers: the dataset card's word (what the data really
    taught), else the spec's (a dataset built before cards recorded it)."""
    card = plan.dataset_src / "dataset_card.json"
    try:
        recorded = json.loads(card.read_text()).get("answer_format") if card.is_file() else None
    except (OSError, ValueError):
        recorded = None
    return recorded or plan.release.spec.dataset.answer_format
