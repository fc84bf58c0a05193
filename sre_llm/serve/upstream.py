"""vLLM, over HTTP: readiness and one greedy chat completion.

The gateway asks vLLM's chat API with the canonical messages (one user turn: the alpaca
instruction and the alert, joined as LLaMA Factory joins them) and vLLM renders them with the
model's chat template, which is LLaMA Factory's own template for the run (``sre-llm serve`` passes
it with ``--chat-template``): the prompt tokens are the ones training and evaluation used, and
``temperature`` is always 0, whatever the client asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from sre_llm.serve.errors import GatewayError, unavailable


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", err))[:300]
    return str(err or body)[:300]


class Upstream:
    """One vLLM server and the model name it serves."""

    def __init__(self, base_url: str, model: str, timeout_s: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=5.0),
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def not_ready(self) -> str | None:
        """None when vLLM answers and serves the model; else why not."""
        try:
            health = await self.client.get("/health", timeout=5.0)
            if health.status_code != 200:
                return f"vLLM at {self.base_url} is not healthy (HTTP {health.status_code})"
            models = await self.client.get("/v1/models", timeout=5.0)
            ids = [m.get("id") for m in models.json().get("data", [])] if models.status_code == 200 else []
        except (httpx.HTTPError, ValueError) as exc:
            return f"vLLM at {self.base_url} is not answering ({type(exc).__name__}: {exc or 'no detail'})"
        if self.model not in ids:
            return f"vLLM at {self.base_url} does not serve {self.model!r} (serves {ids})"
        return None

    async def chat(self, content: str, max_tokens: int, regex: str | None = None) -> Completion:
        """A greedy answer to one user turn, optionally constrained to ``regex``."""
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
                                "temperature": 0.0, "top_p": 1.0, "max_tokens": max_tokens, "n": 1}
        if regex is not None:
            body["structured_outputs"] = {"regex": regex}
        try:
            response = await self.client.post("/v1/chat/completions", json=body)
        except httpx.TimeoutException:
            raise GatewayError(504, f"vLLM at {self.base_url} did not answer in time", kind="timeout") from None
        except httpx.HTTPError as exc:
            raise unavailable(f"vLLM at {self.base_url} is not reachable ({type(exc).__name__}); "
                              "it may be starting or loading the model") from None
        if response.status_code >= 500 or response.status_code == 404:
            raise unavailable(f"vLLM answered HTTP {response.status_code}: {_reason(response)}")
        if response.status_code != 200:
            # vLLM's 400s are about the request we built from the client's (prompt too long for
            # max_model_len, a regex it cannot compile): the client's input, so a 4xx with vLLM's words.
            raise GatewayError(400 if response.status_code != 413 else 413,
                               f"vLLM refused the request (HTTP {response.status_code}): {_reason(response)}")
        data = response.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(choice["message"].get("content") or "", choice.get("finish_reason"),
                          int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
