"""``sre-llm export RUN``: merge a run's LoRA adapter into the unquantized base model.

Serving engines that cannot load adapters need merged weights. The merge goes into the base in
full precision even when the run trained QLoRA: merging into a quantized base loses the adapter's
precision (and LLaMA Factory refuses it), so the quantization keys are dropped here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.execute import config as cfgmod
from sre_llm.execute import process, runs
from sre_llm.execute.digest import tree_digest

MERGED = "merged"
_KEEP = ("model_name_or_path", "model_revision", "trust_remote_code", "template")


def export_config(train_cfg: dict[str, Any], adapter: Path, dest: Path) -> dict[str, Any]:
    """The ``llamafactory-cli export`` arguments for this run (pure)."""
    cfg = {k: train_cfg[k] for k in _KEEP if k in train_cfg}
    cfg.update(
        adapter_name_or_path=str(adapter), finetuning_type="lora", export_dir=str(dest),
        export_size=5, export_device="cpu", export_legacy_format=False,
    )
    return cfg


def export(run: str | Path, base: Path = Path("."), force: bool = False) -> dict[str, Any]:
    """Merge the run's adapter into ``<run>/merged/``; update run.json; return the merged entry."""
    run_dir = Path(run)
    record = runs.read_record(run_dir)
    if record.get("status") != "succeeded":
        raise BadInput(f"{run_dir}: run status is {record.get('status')}; only a finished run can be exported")
    adapter = record.get("adapter")
    if not adapter:
        raise BadInput(f"{run_dir}: a full fine-tune has no adapter to merge; its model is already at {record.get('output_dir')}")
    dest = run_dir / MERGED
    if dest.exists() and not force:
        raise BadInput(f"{dest}: already exported; use --force to merge again")
    train_cfg = cfgmod.read_yaml(run_dir / "train.yaml")
    cfg = export_config(train_cfg, Path(adapter["path"]), dest)
    path = run_dir / "export.yaml"
    path.write_text(cfgmod.dump_yaml(cfg, f"# sre-llm export of run {run_dir.name}\n"))
    log = run_dir / "export.log"
    started = time.time()
    code = process.run([process.llamafactory_cli(), "export", str(path.resolve())], log, cwd=base, env=process.child_env())
    if code != 0:
        raise CheckFailed("\n".join([f"export failed: llamafactory-cli exited with {code}; last lines of its output:"]
                                    + ["  " + line for line in process.tail(log, 25)] + [f"full log: {log}"]))
    from sre_llm.execute import serving_files

    # The merged folder is what gets registered and served: it carries the template and tokenizer too.
    serving_files.write(dest, train_cfg["template"])
    merged = {"path": str(dest), "digest": tree_digest(dest), "seconds": round(time.time() - started, 2),
              "exported_at": runs.iso(time.time())}
    record["merged"] = merged
    runs.write_record(run_dir, record)
    return merged
