"""Routes of the Ollama surface."""

from __future__ import annotations

from starlette.routing import Route

from sre_llm.serve.gateway import Gateway
from sre_llm.serve.ollama import serving


def routes(gw: Gateway) -> list[Route]:
    def bind(fn):
        async def endpoint(request):
            return await fn(gw, request)
        return endpoint

    return [
        Route("/api/generate", bind(serving.generate), methods=["POST"]),
        Route("/api/chat", bind(serving.chat), methods=["POST"]),
        Route("/api/tags", bind(serving.tags), methods=["GET"]),
        Route("/api/version", bind(serving.version), methods=["GET"]),
    ]
