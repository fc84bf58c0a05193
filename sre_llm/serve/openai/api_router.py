"""Routes of the OpenAI surface."""

from __future__ import annotations

from starlette.routing import Route

from sre_llm.serve.gateway import Gateway, endpoint
from sre_llm.serve.openai import serving


def routes(gw: Gateway) -> list[Route]:
    return [
        Route("/v1/chat/completions", endpoint(gw, serving.chat_completions), methods=["POST"]),
        Route("/v1/models", endpoint(gw, serving.models), methods=["GET"]),
    ]
