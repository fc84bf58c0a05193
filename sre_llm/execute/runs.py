"""Run folders and run records: ``runs/<name>/<version>/<run-id>/`` holding ``train.yaml``,
``train.log``, ``output/`` (LLaMA Factory's output_dir) and ``run.json`` (written atomically at
the start and again at the end, so a crashed or killed run still says what it was)."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput
from sre_llm.fsutil import write_atomic

RUN_RECORD = "run.json"
PACKAGES = ("sre-llm", "llamafactory", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def new_run_id(now: float | None = None) -> str:
    """Sortable by start time (UTC, to the second), unique by a short random suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def release_runs(base: Path, name: str, version: str) -> Path:
    return base / "runs" / name / version


def create_run_dir(base: Path, name: str, version: str) -> Path:
    parent = release_runs(base, name, version)
    parent.mkdir(parents=True, exist_ok=True)
    while True:  # mkdir without exist_ok: two runs started in the same second never share a folder
        path = parent / new_run_id()
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def last_run(base: Path, name: str, version: str) -> Path | None:
    parent = release_runs(base, name, version)
    runs = sorted(p for p in parent.iterdir() if (p / RUN_RECORD).is_file()) if parent.is_dir() else []
    return runs[-1] if runs else None


def checkpoints(output_dir: Path) -> list[Path]:
    """``checkpoint-N`` folders in step order."""
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def resume_point(base: Path, name: str, version: str) -> tuple[Path, Path]:
    """(last run folder, its last checkpoint) or a BadInput that says why there is none."""
    run = last_run(base, name, version)
    if run is None:
        raise BadInput(f"--resume: no earlier run of {name} {version} under {release_runs(base, name, version)}; train without --resume")
    # A checkpoint can be resumed only once it is complete: the Trainer writes trainer_state.json last.
    done = [c for c in checkpoints(run / "output") if (c / "trainer_state.json").is_file()]
    if not done:
        raise BadInput(f"--resume: the last run {run} saved no checkpoint (save_steps too large?); train without --resume")
    return run, done[-1]


def read_record(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_RECORD).read_text())
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: not a run folder ({RUN_RECORD} missing)") from None


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    write_atomic(run_dir / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")


def package_versions() -> dict[str, str | None]:
    """Installed versions, read from metadata (no imports: torch would cost seconds)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(base: Path) -> dict[str, Any]:
    """HEAD commit of the repository at ``base`` (None outside a repository or before the first commit)."""
    from sre_llm import gitops

    if not gitops.is_repo(base):
        return {"commit": None}
    try:
        return {"commit": gitops.head(base)}
    except Exception:  # noqa: BLE001 - a run record never fails a finished training
        return {"commit": None}


def trainer_log(output_dir: Path) -> list[dict[str, Any]]:
    path = output_dir / "trainer_log.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
    return rows


def results(output_dir: Path) -> dict[str, Any]:
    """Final figures: LLaMA Factory's all_results.json plus the first/last logged losses."""
    out: dict[str, Any] = {}
    path = output_dir / "all_results.json"
    if path.is_file():
        try:
            out.update(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass
    losses = [r["loss"] for r in trainer_log(output_dir) if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in trainer_log(output_dir) if r.get("eval_loss") is not None]
    return {
        "train_loss": out.get("train_loss"),
        "train_loss_first_logged": losses[0] if losses else None,
        "train_loss_last_logged": losses[-1] if losses else None,
        "eval_loss": out.get("eval_loss", evals[-1] if evals else None),
        "train_runtime_s": out.get("train_runtime"),
        "epoch": out.get("epoch"),
    }


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        return str(path)
