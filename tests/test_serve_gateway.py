"""The gateway's limits and error answers, on a real server (hypercorn on 127.0.0.1), without a
model: vLLM absent (nothing listening), vLLM stuck (a socket that accepts and never answers), a
pass-through Ollama (a local server replaying a recorded Ollama answer: no Ollama runs here)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from sre_llm.serve import server
from sre_llm.serve.app import create_app
from sre_llm.serve.config import GatewayConfig
from tests.test_serve_adapters import AI, ALERTS

ROOT = Path(__file__).resolve().parent.parent
PROMPT = AI.create_remediation_prompt(ALERTS[0])
HEALTH_PROMPT = "Generate a comprehensive SRE health report for prometheus.\n\nMetrics (from Prometheus record rules):\n{}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway(monkeypatch):
    started = []

    def start(**overrides) -> str:
        monkeypatch.setenv("K_REVISION", "sre-remediation-00042")
        cfg = GatewayConfig(**{"upstream": f"http://127.0.0.1:{_closed_port()}", "served_model": "sre-remediation",
                               "model_version": "1.2.3", **overrides})
        bg = server.Background(create_app(cfg), server.bind("127.0.0.1", 0), read_timeout_s=cfg.read_timeout_s)
        started.append(bg)
        return bg.url

    yield start
    for bg in started:
        bg.stop()


def _generate(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/api/generate", json={"model": "sre-remediation", "prompt": PROMPT, "stream": False,
                                                   "options": {"temperature": 0.7, "num_predict": 1024}, **body}, timeout=30)


def test_bad_input_is_a_4xx_with_the_reason(gateway) -> None:
    url = gateway(max_body_bytes=20_000, max_prompt_chars=400)
    r = httpx.post(f"{url}/api/generate", content=b"{not json", timeout=10)
    assert r.status_code == 400 and r.json()["error"].startswith("request body is not JSON: ")
    r = httpx.post(f"{url}/v1/chat/completions", content=b"[1]", timeout=10)
    assert r.status_code == 400
    assert r.json()["error"] == {"message": "request body must be a JSON object (got list)", "type": "invalid_request_error", "code": 400}
    r = httpx.post(f"{url}/api/generate", json={"prompt": PROMPT}, timeout=10)
    assert (r.status_code, r.json()) == (400, {"error": "model: Field required"})
    r = _generate(url, model="llama3")
    assert (r.status_code, r.json()) == (404, {"error": "model 'llama3' not found; this gateway serves 'sre-remediation'"})
    r = httpx.post(f"{url}/api/generate", content=b"x" * 20_001, timeout=10)
    assert (r.status_code, r.json()) == (413, {"error": "request body is 20001 bytes (limit 20000)"})
    r = _generate(url)  # the alert renders to more than max_prompt_chars
    assert r.status_code == 413 and "character prompt (limit 400)" in r.json()["error"]
    r = _generate(url, prompt=HEALTH_PROMPT)
    assert r.status_code == 422
    assert r.json()["error"] == ("the prompt is not one this gateway understands (adapters: agent-sre, canonical) and no "
                                 "pass-through upstream is configured (--passthrough / SRE_LLM_PASSTHROUGH_URL)")
    r = httpx.post(f"{url}/api/chat", json={"model": "sre-remediation", "messages": [{"role": "system", "content": "x"}]}, timeout=10)
    assert (r.status_code, r.json()) == (400, {"error": "messages: no user message to answer"})


def test_vllm_down_is_503_with_retry_after_and_not_ready(gateway) -> None:
    url = gateway()
    r = _generate(url)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert "is not reachable" in r.json()["error"]
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "sre-remediation", "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
    assert httpx.get(f"{url}/healthz").status_code == 200
    version = httpx.get(f"{url}/api/version").json()
    assert set(version) == {"version", "sre_llm", "model_version"} and version["model_version"] == "1.2.3"
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5" and "not answering" in ready.json()["reason"]
    metrics = httpx.get(f"{url}/metrics").text
    assert ('sre_llm_gateway_requests_total{model_version="1.2.3",protocol="ollama",revision="sre-remediation-00042",'
            'status="503"} 1.0') in metrics


@pytest.fixture
def stuck_vllm():
    """A listening socket that accepts connections and never answers: vLLM hung."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_concurrency_limit_and_request_timeout(gateway, stuck_vllm) -> None:
    url = gateway(upstream=stuck_vllm, max_concurrency=1, request_timeout_s=2.0)
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(_generate(url)))
    first.start()
    time.sleep(0.5)
    second = _generate(url)
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    assert second.json()["error"] == "1 requests in flight (limit 1); retry"
    first.join(10)
    assert results[0].status_code == 504 and "within 2 s" in results[0].json()["error"]
    assert _generate(url).status_code == 504  # the slot was given back


def test_a_silent_client_is_dropped_after_the_read_timeout(gateway) -> None:
    url = gateway(read_timeout_s=1.0)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        t0 = time.monotonic()
        assert s.recv(1024) == b""  # closed by the server, not left hanging
        assert 0.5 < time.monotonic() - t0 < 5
    assert httpx.get(f"{url}/healthz").status_code == 200


class _RecordedOllama(BaseHTTPRequestHandler):
    """Answers like Ollama's /api/generate (the fields of Ollama's API docs); no Ollama runs on this machine."""

    seen: ClassVar[list[dict]] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, **body})
        reply = json.dumps({"model": body["model"], "created_at": "2026-11-30T10:00:00.000000Z",
                            "response": '{"status": "Healthy", "score": 0.97, "summary": "All targets up."}',
                            "done": True, "done_reason": "stop", "total_duration": 812345678, "eval_count": 21}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def test_prompts_no_adapter_understands_pass_through(gateway) -> None:
    ollama = ThreadingHTTPServer(("127.0.0.1", 0), _RecordedOllama)
    threading.Thread(target=ollama.serve_forever, daemon=True).start()
    try:
        url = gateway(passthrough=f"http://127.0.0.1:{ollama.server_address[1]}", passthrough_model="llama3.2:1b")
        r = _generate(url, prompt=HEALTH_PROMPT)
        assert r.status_code == 200 and r.headers["X-Sre-Llm-Route"] == "passthrough"
        assert json.loads(r.json()["response"])["status"] == "Healthy"
        assert _RecordedOllama.seen[-1] == {"path": "/api/generate", "model": "llama3.2:1b", "prompt": HEALTH_PROMPT,
                                            "stream": False, "options": {"temperature": 0.7, "num_predict": 1024}}
        # A remediation prompt is never passed through: it is answered here (here: vLLM is down).
        assert _generate(url).status_code == 503
        assert len(_RecordedOllama.seen) == 1
    finally:
        ollama.shutdown()
        ollama.server_close()
    r = _generate(url, prompt=HEALTH_PROMPT)  # the pass-through down: 502 with the reason
    assert r.status_code == 502 and "pass-through upstream" in r.json()["error"]


def test_the_gateway_imports_no_torch_transformers_or_llamafactory() -> None:
    import subprocess
    import sys

    code = ("import sys; import sre_llm.serve.__main__; from sre_llm.serve.app import create_app; "
            "from sre_llm.serve.config import GatewayConfig; create_app(GatewayConfig('http://127.0.0.1:9', 'm')); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'llamafactory', 'vllm'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
