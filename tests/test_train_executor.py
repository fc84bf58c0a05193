"""`sre-llm train` / `export` for real: LLaMA Factory fine-tunes the tiny models on the CPU.

Each test is a project folder in tmp_path (spec, datasets/<name>/current) and runs the CLI there,
so nothing lands in the repository. The tiny models are built once per session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sre_llm.execute import serving_files
from tests.helpers.train_env import ROOT, SRE_LLM, project, spec_text, sremain, tiny_model

pytestmark = [pytest.mark.llamafactory, pytest.mark.slow]

# LoRA halves the loss in 30 steps even on the random-weight model (see tiny.py on the initializer);
# the copy-task pre-training (CLI default 400 steps) is for the demo and the evaluator.
PRETRAIN = 0


@pytest.fixture(scope="session")
def qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.getbasetemp(), "qwen2", PRETRAIN)


@pytest.fixture(scope="session")
def llama3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.getbasetemp(), "llama3", PRETRAIN)


def only_run(tmp: Path, name: str) -> Path:
    (run,) = sorted((tmp / "runs" / name / "0.1.0").iterdir())
    return run


def check_record(run: Path, model: Path, method: str) -> dict:
    rec = json.loads((run / "run.json").read_text())
    assert rec["status"] == "succeeded" and rec["exit_code"] == 0
    assert rec["run_id"] == run.name
    assert rec["spec"]["path"] == "specs/x.yaml" and rec["spec"]["digest"].startswith("sha256:")
    assert set(rec["dataset"]["files"]) == {"train.jsonl", "validation.jsonl"}
    assert rec["dataset"]["digest"].startswith("sha256:") and rec["dataset"]["decrypted"] is False
    assert rec["base_model"]["path"] == str(model) and rec["base_model"]["digest"].startswith("sha256:")
    assert {"torch", "transformers", "peft", "llamafactory"} <= {k for k, v in rec["packages"].items() if v}
    assert rec["packages"]["llamafactory"] == "0.9.5"
    assert "commit" in rec["git"]
    assert rec["started_at"] <= rec["ended_at"] and rec["duration_s"] > 0
    first, last = rec["final"]["train_loss_first_logged"], rec["final"]["train_loss_last_logged"]
    assert last < first / 2, (first, last)
    assert rec["final"]["eval_loss"] is not None and rec["final"]["train_loss"] is not None
    assert rec["checkpoints"] and all((run.parents[3] / c / "trainer_state.json").is_file() for c in rec["checkpoints"])
    ad = rec["adapter"]
    assert ad["path"] == f"runs/{run.parent.parent.name}/0.1.0/{run.name}/output"  # relative to the project
    assert set(ad["files"]) == {"adapter_config.json", "adapter_model.safetensors"}
    # What vLLM is given in the cluster: LLaMA Factory's template and the trained tokenizer.
    assert serving_files.present(run / "output") and set(rec["serving_files"]) == {"chat_template", "tokenizer"}
    cfg = json.loads((run / "output" / "adapter_config.json").read_text())
    assert cfg["r"] == 16 and cfg["base_model_name_or_path"] == str(model)
    # The run's config is the rendered one with only the per-run paths changed.
    from ruamel.yaml import YAML

    run_cfg = YAML(typ="safe").load((run / "train.yaml").read_text())
    rendered = YAML(typ="safe").load((run.parents[3] / rec["rendered"]["dir"] / "train.yaml").read_text())
    changed = {k for k in rendered if rendered[k] != run_cfg.get(k)} | (set(run_cfg) - set(rendered))
    assert changed <= {"output_dir", "dataset_dir", "model_name_or_path"}
    assert run_cfg["output_dir"] == str(run / "output") and run_cfg["dataset_dir"] == str(run / "data")
    return rec


def test_lora_on_tiny_qwen2_then_export(tmp_path: Path, qwen2: Path) -> None:
    spec = project(tmp_path, spec_text("q", qwen2, "qwen2", lr=1e-2, max_steps=30, save_steps=15))
    proc = sremain(["train", str(spec.relative_to(tmp_path))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path, "q")
    rec = check_record(run, qwen2, "lora")
    assert [Path(c).name for c in rec["checkpoints"]] == ["checkpoint-15", "checkpoint-30"]
    assert f"adapter: runs/q/0.1.0/{run.name}/output" in proc.stdout
    assert (tmp_path / "rendered" / "q" / "0.1.0" / "train.yaml").is_file()  # rendered because it was missing
    assert os.path.islink(run / "data" / "train.jsonl")

    proc = sremain(["export", f"runs/q/0.1.0/{run.name}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = run / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert serving_files.present(merged)
    assert json.loads((run / "run.json").read_text())["merged"]["path"] == f"runs/q/0.1.0/{run.name}/merged"
    again = sremain(["export", f"runs/q/0.1.0/{run.name}"], cwd=tmp_path)
    assert again.returncode == 2 and "already exported; use --force" in again.stderr


def test_lora_on_tiny_llama3(tmp_path: Path, llama3: Path) -> None:
    spec = project(tmp_path, spec_text("l", llama3, "llama3", lr=1e-2, max_steps=30, save_steps=30))
    proc = sremain(["train", "specs/x.yaml", "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0] == {"event": "note", "message": "rendered files for specs/x.yaml were out of date: re-rendered into rendered/l/0.1.0"}
    assert events[1]["event"] == "start" and events[-2]["event"] == "end" and events[-2]["status"] == "succeeded"
    # The last line is the one result object every command prints under --json.
    assert events[-1]["ok"] is True and events[-1]["event"] == "result" and events[-1]["status"] == "succeeded"
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [5, 10, 15, 20, 25, 30] and {e["total"] for e in steps} == {30}
    assert all(e["loss"] > 0 and e["lr"] >= 0 for e in steps)
    check_record(only_run(tmp_path, "l"), llama3, "lora")


def test_qlora_4bit_trains_on_tiny_model(tmp_path: Path, qwen2: Path) -> None:
    spec = project(tmp_path, spec_text("ql", qwen2, "qwen2", "qlora", lr=1e-2, max_steps=20, save_steps=20))
    proc = sremain(["train", "specs/x.yaml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path, "ql")
    rec = json.loads((run / "run.json").read_text())
    assert rec["status"] == "succeeded" and rec["adapter"] is not None
    assert "quantization_bit: 4" in (run / "train.yaml").read_text()
    assert "Quantizing model to 4 bit with bitsandbytes." in (run / "train.log").read_text()
    assert rec["final"]["train_loss_last_logged"] < rec["final"]["train_loss_first_logged"]


def test_sigterm_stops_cleanly_and_resume_finishes(tmp_path: Path, qwen2: Path) -> None:
    project(tmp_path, spec_text("r", qwen2, "qwen2", lr=1e-2, max_steps=40, save_steps=10))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(SRE_LLM + ["train", "specs/x.yaml", "--json"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_lines = []
    try:
        for line in proc.stdout:  # wait until a checkpoint is complete, then stop mid-way
            out_lines.append(line)
            event = json.loads(line)
            if event["event"] == "step" and event["step"] >= 15:
                break
        run = only_run(tmp_path, "r")
        deadline = time.time() + 120
        while not (run / "output" / "checkpoint-10" / "trainer_state.json").is_file():
            assert time.time() < deadline
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "stopped by SIGTERM" in stderr and "continue with `sre-llm train specs/x.yaml --resume`" in stderr
    first = json.loads((run / "run.json").read_text())
    assert first["status"] == "interrupted" and first["ended_at"] is not None
    *_, end, result = [json.loads(line) for line in stdout.splitlines()]
    assert end == {"event": "end", "status": "interrupted", "run_dir": f"runs/r/0.1.0/{run.name}"}
    assert result["ok"] is False and result["error"]["code"] == "interrupted"  # the one error object, last
    assert not (run / "output" / "checkpoint-40").exists()

    proc2 = sremain(["train", "specs/x.yaml", "--resume", "--json"], cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    runs = sorted((tmp_path / "runs" / "r" / "0.1.0").iterdir())
    assert len(runs) == 2 and runs[0] == run
    second = json.loads((runs[1] / "run.json").read_text())
    assert second["status"] == "succeeded"
    last_ckpt = max((c for c in first["checkpoints"]), key=lambda c: int(c.rsplit("-", 1)[1]))
    assert second["resumed_from"] == {"run": f"runs/r/0.1.0/{run.name}", "checkpoint": last_ckpt}
    steps = [json.loads(x)["step"] for x in proc2.stdout.splitlines() if json.loads(x)["event"] == "step"]
    assert steps[-1] == 40 and steps[0] > 10  # continued, not restarted
    assert (runs[1] / "output" / "adapter_model.safetensors").is_file()


def test_broken_dataset_exits_1_with_llamafactorys_reason(tmp_path: Path, qwen2: Path) -> None:
    project(tmp_path, spec_text("b", qwen2, "qwen2", max_steps=5), broken=True)
    proc = sremain(["train", "specs/x.yaml"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    run = only_run(tmp_path, "b")
    _, sep, error = proc.stderr.partition("training failed: llamafactory-cli exited with 1; last lines of its output:\n")
    assert sep, proc.stderr  # after the progress display, on stderr
    lines = error.splitlines()
    assert len(lines) == 26 and all(line.startswith("  ") for line in lines[:-1])
    assert "Cannot find valid samples, check `data/README.md` for the data format." in lines[-2]
    assert lines[-1] == f"full log: runs/b/0.1.0/{run.name}/train.log"
    rec = json.loads((run / "run.json").read_text())
    assert (rec["status"], rec["exit_code"], rec["adapter"]) == ("failed", 1, None)


def test_dry_run_of_the_shipped_qwen2_spec_offline_names_the_model(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / "qwen2-7b-qlora.yaml", tmp_path / "specs")
    proc = sremain(["train", "specs/qwen2-7b-qlora.yaml", "--dry-run"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert ("specs/qwen2-7b-qlora.yaml: spec.base_model.name: Qwen/Qwen2-7B is not on disk and the hub is off "
            "(HF_HUB_OFFLINE): download it where the hub is allowed, or set base_model.path to a local copy") in lines
    assert ("specs/qwen2-7b-qlora.yaml: spec.dataset.name: datasets/sre-remediation/current: no dataset there; "
            "build it with `sre-llm dataset build specs/qwen2-7b-qlora.yaml`") in lines
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_dry_run_of_a_runnable_spec_starts_nothing(tmp_path: Path, qwen2: Path) -> None:
    project(tmp_path, spec_text("d", qwen2, "qwen2"))
    proc = sremain(["train", "specs/x.yaml", "--dry-run"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"specs/x.yaml: ready to train {qwen2} on datasets/alerts/current\n"
    assert not (tmp_path / "runs").exists()


def test_the_chat_template_is_cached_by_what_it_is_a_function_of(tmp_path: Path, qwen2: Path) -> None:
    """The template costs an import of LLaMA Factory (~6 s on 2 cores); the next run from the same
    tokenizer reads it from the user's cache, and anything it depends on changes the key."""
    import sys

    env = {**os.environ, "SRE_LLM_CACHE": str(tmp_path / "cache")}
    code = ("import sys; from sre_llm.execute import serving_files as sf; "
            f"t = sf.lf_chat_template('qwen', {str(qwen2)!r}); print(repr(t)); print('llamafactory' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    text, imported = first.stdout.splitlines()
    assert imported == "True" and "You are Qwen, created by Alibaba Cloud." in text  # LLaMA Factory's own
    assert second.stdout.splitlines() == [text, "False"]  # the same template, LLaMA Factory not imported
    (cached,) = (tmp_path / "cache" / "chat-templates").iterdir()
    assert cached.name == serving_files.template_key("qwen", qwen2) + ".jinja"
    # The key follows the template name and every tokenizer file's bytes.
    tok = tmp_path / "tok"
    shutil.copytree(qwen2, tok, ignore=shutil.ignore_patterns("*.safetensors"))
    key = serving_files.template_key("qwen", tok)
    assert key == serving_files.template_key("qwen", qwen2) and key != serving_files.template_key("llama3", tok)
    config = json.loads((tok / "tokenizer_config.json").read_text())
    (tok / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "<|endoftext|>"}))
    assert serving_files.template_key("qwen", tok) != key
