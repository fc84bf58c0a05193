"""Prompts no adapter understands go, unchanged, to an optional upstream: the team's Ollama.

agent-sre sends every model call (remediation and health reports) to one ``OLLAMA_URL``; the
gateway answers the remediation prompts and hands the others to the Ollama that answered them
before. Without a pass-through upstream such a prompt is refused with 422 and the reason.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from sre_llm.serve.errors import GatewayError


class Passthrough:
    """Forwards a request body to ``url`` + the same path, streaming the answer back."""

    def __init__(self, url: str, model: str | None = None, timeout_s: float = 300.0):
        self.url = url.rstrip("/")
        self.model = model
        self.client = httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(timeout_s, connect=5.0))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def forward(self, path: str, body: dict[str, Any]) -> StreamingResponse:
        if self.model:
            body = {**body, "model": self.model}
        request = self.client.build_request("POST", path, json=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise GatewayError(502, f"the pass-through upstream {self.url} is not reachable ({type(exc).__name__})",
                               {"Retry-After": "5"}) from None
        headers = {"X-Sre-Llm-Route": "passthrough"}
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=headers,
                                 media_type=response.headers.get("content-type", "application/json"),
                                 background=BackgroundTask(response.aclose))
