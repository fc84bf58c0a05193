"""Routes of the Ollama surface."""

from __future__ import annotations

from starlette.routing import Route

from sre_llm.serve.gateway import Gateway, endpoint
from sre_llm.serve.ollama import serving


def routes(gw: Gateway) -> list[Route]:
    return [
        Route("/api/generate", endpoint(gw, serving.generate), methods=["POST"]),
        Route("/api/chat", endpoint(gw, serving.chat), methods=["POST"]),
        Route("/api/tags", endpoint(gw, serving.tags), methods=["GET"]),
        Route("/api/version", endpoint(gw, serving.version), methods=["GET"]),
    ]
