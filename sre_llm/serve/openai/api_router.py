"""Routes of the OpenAI surface."""

from __future__ import annotations

from starlette.routing import Route

from sre_llm.serve.gateway import Gateway
from sre_llm.serve.openai import serving


def routes(gw: Gateway) -> list[Route]:
    def bind(fn):
        async def endpoint(request):
            return await fn(gw, request)
        return endpoint

    return [
        Route("/v1/chat/completions", bind(serving.chat_completions), methods=["POST"]),
        Route("/v1/models", bind(serving.models), methods=["GET"]),
    ]
