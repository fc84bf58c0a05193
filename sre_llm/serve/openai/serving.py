"""The work behind OpenAI's endpoints.

A request whose ``tools`` include the adapter's decision tool (agent-sre's
``select_remediation_action``) gets the decision as a ``tool_calls`` entry whose arguments are
agent-sre's reply object; no action is plain content (``lambda_function: null``) with
``finish_reason: stop``. Without the tool the reply is the adapter's text. ``stream`` sends the
same, whole and guarded, as server-sent events.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sre_llm.serve.errors import GatewayError
from sre_llm.serve.gateway import Gateway, parse_body, read_json
from sre_llm.serve.openai.protocol import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ToolCall,
    Usage,
)


async def chat_completions(gw: Gateway, request: Request) -> Response:
    body = await read_json(request)
    req: ChatCompletionRequest = parse_body(ChatCompletionRequest, body, kind="invalid_request_error")
    users = [m for m in req.messages if m.role == "user"]
    if not users:
        raise GatewayError(400, "messages: no user message to answer", kind="invalid_request_error")
    found = gw.route(users[-1].text())
    if found is None:
        return await gw.passthrough.forward("/v1/chat/completions", body)  # type: ignore[union-attr]
    gw.check_model(req.model)
    adapter, alert = found
    answer = await gw.decider.decide(alert, req.max_completion_tokens or req.max_tokens)
    arguments = adapter.tool_arguments(answer) if adapter.tool and adapter.tool in req.tool_names() else None
    if arguments is not None:
        call = ToolCall(id=f"call_{uuid.uuid4().hex[:24]}",
                        function={"name": adapter.tool, "arguments": json.dumps(arguments, ensure_ascii=False)})
        message, finish = AssistantMessage(content=None, tool_calls=[call]), "tool_calls"
    else:
        message, finish = AssistantMessage(content=adapter.reply(answer)), "stop"
    response = ChatCompletionResponse(
        id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=req.model,
        choices=[Choice(message=message, finish_reason=finish, sre_llm=answer.extension())],
        usage=Usage(prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                    total_tokens=answer.prompt_tokens + answer.completion_tokens),
    ).model_dump(exclude_none=True)
    if not req.stream:
        return JSONResponse(response)
    return _sse(response)


def _sse(response: dict[str, Any]) -> StreamingResponse:
    choice = response["choices"][0]
    head = {k: response[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    delta = dict(choice["message"])
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
    chunks = [{**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
              {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"],
                                    "sre_llm": choice.get("sre_llm")}], "usage": response["usage"]}]

    async def events() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def models(gw: Gateway, request: Request) -> Response:
    data = [{"id": n, "object": "model", "created": int(gw.started), "owned_by": "sre-llm",
             "sre_llm": {"model_version": gw.config.model_version}} for n in (gw.config.served_model, *gw.config.aliases)]
    return JSONResponse({"object": "list", "data": data})
