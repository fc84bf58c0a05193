"""The executor's pure parts, fast: run config, launcher env, log tail, checkpoints, export config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sre_llm.errors import BadInput
from sre_llm.execute import config as cfgmod
from sre_llm.execute import process, runs
from sre_llm.execute.export import export_config
from sre_llm.execute.progress import JsonReporter, LogTail, fmt_loss, step_event


def test_run_config_changes_only_the_run_paths(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    rendered = {"model_name_or_path": "m", "output_dir": "runs/x/output", "dataset_dir": "datasets/d/current",
                "learning_rate": 0.002, "quantization_bit": 4}
    cfg = cfgmod.run_config(rendered, tmp_path, tmp_path / "r" / "output", tmp_path / "r" / "data", tmp_path / "c")
    assert cfg == {"model_name_or_path": str(tmp_path / "m"), "output_dir": str(tmp_path / "r" / "output"),
                   "dataset_dir": str(tmp_path / "r" / "data"), "learning_rate": 0.002, "quantization_bit": 4,
                   "resume_from_checkpoint": str(tmp_path / "c")}
    assert rendered["output_dir"] == "runs/x/output"  # a new mapping; the input is untouched
    hub = cfgmod.run_config({"model_name_or_path": "Qwen/Qwen2-7B"}, tmp_path, tmp_path / "o", tmp_path / "d")
    assert hub["model_name_or_path"] == "Qwen/Qwen2-7B" and "resume_from_checkpoint" not in hub
    text = cfgmod.dump_yaml(cfg, "# h\n")
    assert text.startswith("# h\nmodel_name_or_path: ") and cfgmod.read_yaml_text(text) == cfg


def test_launcher_env_file(tmp_path: Path) -> None:
    p = tmp_path / "launcher.env"
    p.write_text("# Generated\n\nFORCE_TORCHRUN=1\nNNODES=2\nMASTER_ADDR=10.0.0.1\n")
    assert cfgmod.read_env_file(p) == {"FORCE_TORCHRUN": "1", "NNODES": "2", "MASTER_ADDR": "10.0.0.1"}
    p.write_text("FORCE_TORCHRUN=1\nnot a line\n")
    with pytest.raises(BadInput, match=r"launcher.env:2: expected KEY=VALUE, got 'not a line'"):
        cfgmod.read_env_file(p)


def test_log_tail_returns_only_complete_new_lines(tmp_path: Path) -> None:
    p = tmp_path / "trainer_log.jsonl"
    tail = LogTail(p)
    assert tail.read() == []
    p.write_text('{"current_steps": 5, "loss": 2.0}\n{"current_ste')
    assert tail.read() == [{"current_steps": 5, "loss": 2.0}]
    with open(p, "a") as fh:
        fh.write('ps": 10, "loss": 1.0}\n')
    assert tail.read() == [{"current_steps": 10, "loss": 1.0}]
    assert tail.read() == []


def test_events() -> None:
    row = {"current_steps": 5, "total_steps": 30, "loss": 2.5, "lr": 0.01, "epoch": 0.5,
           "elapsed_time": "0:00:02", "remaining_time": "0:00:10"}
    assert step_event(row) == {"event": "step", "step": 5, "total": 30, "loss": 2.5, "lr": 0.01, "epoch": 0.5,
                               "elapsed": "0:00:02", "eta": "0:00:10"}
    assert step_event({"current_steps": 30, "total_steps": 30, "eval_loss": 1.5}) == {
        "event": "eval", "step": 30, "total": 30, "eval_loss": 1.5}

    class Sink(list):
        def write(self, s: str) -> None:
            self.append(s)

        def flush(self) -> None:
            pass

    sink = Sink()
    JsonReporter(sink).rows([row, {"current_steps": 30, "total_steps": 30, "epoch": 1.0}])  # summary row skipped
    assert [json.loads(s)["event"] for s in sink] == ["step"]


def test_losses_are_shown_to_four_significant_digits() -> None:
    assert [fmt_loss(x) for x in (1.1269835233688354, 0.035421987, 12.345678, 2.0, None)] == [
        "1.127", "0.03542", "12.35", "2", "–"]


def test_checkpoints_resume_point_and_run_ids(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"--resume: no earlier run of n 1.0.0 under .*; train without --resume"):
        runs.resume_point(tmp_path, "n", "1.0.0")
    a = runs.create_run_dir(tmp_path, "n", "1.0.0")
    b = runs.create_run_dir(tmp_path, "n", "1.0.0")
    assert a != b and a.parent == b.parent == tmp_path / "runs" / "n" / "1.0.0"
    for run in (a, b):
        runs.write_record(run, {"run_id": run.name})
    last = runs.last_run(tmp_path, "n", "1.0.0")
    assert last == max(a, b)
    with pytest.raises(BadInput, match="saved no checkpoint"):
        runs.resume_point(tmp_path, "n", "1.0.0")
    for step in (100, 20, 5):
        (last / "output" / f"checkpoint-{step}").mkdir(parents=True)
    (last / "output" / "checkpoint-x").mkdir()
    assert [c.name for c in runs.checkpoints(last / "output")] == ["checkpoint-5", "checkpoint-20", "checkpoint-100"]
    (last / "output" / "checkpoint-20" / "trainer_state.json").write_text("{}")
    # checkpoint-100 is incomplete (no trainer_state.json: killed while saving), so 20 is the one
    assert runs.resume_point(tmp_path, "n", "1.0.0") == (last, last / "output" / "checkpoint-20")
    assert len(runs.new_run_id(0)) == len("19700101-000000-abcd") and runs.new_run_id(0).startswith("19700101-000000-")


def test_log_tail_lines(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)) + "10%|#  \r50%|### \r100%|#####\n\n")
    assert process.tail(log, 3) == ["line 38", "line 39", "100%|#####"]
    assert process.tail(tmp_path / "missing.log") == []


def test_export_merges_into_the_unquantized_base(tmp_path: Path) -> None:
    train = {"model_name_or_path": "/m", "template": "qwen", "trust_remote_code": False, "quantization_bit": 4,
             "quantization_method": "bnb", "finetuning_type": "lora", "lora_rank": 16, "output_dir": "/o"}
    assert export_config(train, Path("/o"), Path("/r/merged")) == {
        "model_name_or_path": "/m", "template": "qwen", "trust_remote_code": False, "adapter_name_or_path": "/o",
        "finetuning_type": "lora", "export_dir": "/r/merged", "export_size": 5, "export_device": "cpu",
        "export_legacy_format": False}


def test_offline_environment() -> None:
    env = process.child_env({"NNODES": "2"})
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"
    assert env["WANDB_MODE"] == "disabled" and env["DO_NOT_TRACK"] == "1" and env["NNODES"] == "2"
