"""The work behind Ollama's endpoints: route the prompt to an adapter (or pass it through),
decide, answer in Ollama's shape, streamed as NDJSON when ``stream`` is true (Ollama's default).

The whole guarded answer exists before the first byte is sent: a stream is one chunk with the
reply and a final ``done`` chunk, never unguarded tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sre_llm import __version__ as sre_llm_version
from sre_llm.serve.errors import GatewayError
from sre_llm.serve.gateway import Gateway, parse_body, read_json
from sre_llm.serve.ollama.protocol import (
    ChatRequest,
    ChatResponse,
    GenerateRequest,
    GenerateResponse,
    Message,
)

OLLAMA_API_VERSION = "0.12.0"  # the Ollama API this surface follows (what /api/version reports)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _now() -> str:
    return _iso(datetime.now(timezone.utc))


async def _decide(gw: Gateway, alert: Any, num_predict: int | None) -> tuple[Any, dict[str, int]]:
    """The decision and Ollama's timing fields for it (nanoseconds, token counts)."""
    t0 = time.perf_counter()
    answer = await gw.decider.decide(alert, num_predict)
    return answer, {"total_duration": int((time.perf_counter() - t0) * 1e9), "prompt_eval_count": answer.prompt_tokens,
                    "eval_count": answer.completion_tokens}


def _ndjson(first: dict[str, Any], last: dict[str, Any]) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        yield (json.dumps(first) + "\n").encode()
        yield (json.dumps(last) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def generate(gw: Gateway, request: Request) -> Response:
    body = await read_json(request)
    req: GenerateRequest = parse_body(GenerateRequest, body)
    if not req.prompt:  # Ollama's "load the model" request
        gw.check_model(req.model)
        return JSONResponse(GenerateResponse(model=req.model, created_at=_now(), response="",
                                             done_reason="load").model_dump(exclude_none=True))
    found = gw.route(req.prompt)
    if found is None:
        return await gw.passthrough.forward("/api/generate", body)  # type: ignore[union-attr]
    gw.check_model(req.model)
    adapter, alert = found
    answer, timings = await _decide(gw, alert, req.options.num_predict)
    reply = GenerateResponse(model=req.model, created_at=_now(), response=adapter.reply(answer),
                             sre_llm=answer.extension(), **timings).model_dump(exclude_none=True)
    if not req.stream:
        return JSONResponse(reply)
    first = {"model": req.model, "created_at": reply["created_at"], "response": reply["response"], "done": False}
    return _ndjson(first, {**reply, "response": ""})


async def chat(gw: Gateway, request: Request) -> Response:
    body = await read_json(request)
    req: ChatRequest = parse_body(ChatRequest, body)
    users = [m for m in req.messages if m.role == "user"]
    if not users:
        if not req.messages:  # Ollama's "load the model" request
            gw.check_model(req.model)
            return JSONResponse(ChatResponse(model=req.model, created_at=_now(), message=Message(role="assistant"),
                                             done_reason="load").model_dump(exclude_none=True))
        raise GatewayError(400, "messages: no user message to answer")
    found = gw.route(users[-1].content)
    if found is None:
        return await gw.passthrough.forward("/api/chat", body)  # type: ignore[union-attr]
    gw.check_model(req.model)
    adapter, alert = found
    answer, timings = await _decide(gw, alert, req.options.num_predict)
    reply = ChatResponse(model=req.model, created_at=_now(), message=Message(role="assistant", content=adapter.reply(answer)),
                         sre_llm=answer.extension(), **timings).model_dump(exclude_none=True)
    if not req.stream:
        return JSONResponse(reply)
    first = {"model": req.model, "created_at": reply["created_at"], "message": reply["message"], "done": False}
    return _ndjson(first, {**reply, "message": {"role": "assistant", "content": ""}})


async def tags(gw: Gateway, request: Request) -> Response:
    modified = _iso(datetime.fromtimestamp(gw.started, timezone.utc))
    names = [gw.config.served_model, *gw.config.aliases]
    models = [{"name": n, "model": n, "modified_at": modified, "size": 0, "digest": gw.config.model_version,
               "details": {"format": "safetensors", "family": "sre-llm", "parameter_size": "", "quantization_level": ""}}
              for n in names]
    return JSONResponse({"models": models})


async def version(gw: Gateway, request: Request) -> Response:
    return JSONResponse({"version": OLLAMA_API_VERSION, "sre_llm": sre_llm_version,
                         "model_version": gw.config.model_version})
