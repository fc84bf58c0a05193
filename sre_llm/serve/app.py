"""The gateway's ASGI app: the surfaces' routes, health, metrics, and the limits around them.

Limits (all in :class:`~sre_llm.serve.config.GatewayConfig`), each answered with a status and a
reason in the surface's own error shape, never a dropped connection:

- a body over ``max_body_bytes`` → 413 (before it is read when Content-Length says so);
- more than ``max_concurrency`` requests in flight → 429 with ``Retry-After``;
- a request running past ``request_timeout_s`` → 504;
- malformed JSON, a body of the wrong shape → 400; an unknown model → 404; a prompt no adapter
  understands without a pass-through → 422; vLLM down or loading → 503 with ``Retry-After``;
- anything unexpected → 500 with the exception's type; the process keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sre_llm.serve.config import GatewayConfig
from sre_llm.serve.decide import SHADOW_REQUEST, Constraint
from sre_llm.serve.errors import GatewayError
from sre_llm.serve.gateway import Gateway
from sre_llm.serve.metrics import CONTENT_TYPE_LATEST
from sre_llm.serve.ollama import api_router as ollama_router
from sre_llm.serve.openai import api_router as openai_router
from sre_llm.serve.sidecalls import REVISION_HEADER, SHADOW_HEADER

_KINDS = {400: "invalid_request_error", 404: "NotFoundError", 413: "invalid_request_error", 422: "invalid_request_error",
          401: "authentication_error", 429: "rate_limit_error", 503: "service_unavailable", 504: "timeout"}


def protocol_of(path: str) -> str:
    if path.startswith("/v1/"):
        return "openai"
    if path.startswith("/api/"):
        return "ollama"
    return "ops"


def error_body(path: str, status: int, reason: str, kind: str | None = None) -> dict[str, Any]:
    """Ollama's ``{"error": "..."}``, or OpenAI's ``{"error": {"message", "type", "code"}}``."""
    if protocol_of(path) == "openai":
        return {"error": {"message": reason, "type": kind or _KINDS.get(status, "server_error"), "code": status}}
    return {"error": reason}


def error_response(path: str, err: GatewayError) -> JSONResponse:
    return JSONResponse(error_body(path, err.status, err.reason, err.kind), err.status, headers=err.headers)


class Limits:
    """Pure ASGI middleware: body size, concurrency, timeout, request metrics."""

    def __init__(self, app, gw: Gateway):
        self.app = app
        self.gw = gw
        self.inflight = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        t0 = time.perf_counter()
        state = {"status": None}
        revision = (REVISION_HEADER.lower().encode(), self.gw.config.revision.encode())
        # A copy from a champion's gateway: answered, compared there, never acted on (decide.SHADOW_REQUEST).
        SHADOW_REQUEST.set(dict(scope["headers"]).get(SHADOW_HEADER.lower().encode()) == b"1")

        async def tracked(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                # which revision answered: the shadow caller skips itself, operators see who served
                message = {**message, "headers": [*message.get("headers", []), revision]}
            await send(message)

        async def fail(err: GatewayError) -> None:
            if state["status"] is None:
                body = json.dumps(error_body(path, err.status, err.reason, err.kind)).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
                await tracked({"type": "http.response.start", "status": err.status, "headers": headers})
                await tracked({"type": "http.response.body", "body": body})

        try:
            if not self._authorized(scope):
                await fail(GatewayError(401, "missing or wrong bearer token (Authorization: Bearer …)",
                                        {"WWW-Authenticate": "Bearer"}, kind="authentication_error"))
            elif scope["method"] == "POST":
                await self._limited(scope, receive, tracked, fail)
            else:
                await self.app(scope, receive, tracked)
        finally:
            if state["status"] is not None:
                self.gw.metrics.request(protocol_of(path), state["status"], time.perf_counter() - t0)

    def _authorized(self, scope) -> bool:
        """OpenAI-style routes ask for the client token when one is configured (Ollama's cannot)."""
        token = self.gw.config.client_token
        if token is None or protocol_of(scope["path"]) != "openai":
            return True
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, f"Bearer {token}".encode())

    async def _limited(self, scope, receive, send, fail) -> None:
        cfg = self.gw.config
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > cfg.max_body_bytes:
            return await fail(GatewayError(413, f"request body is {int(length)} bytes (limit {cfg.max_body_bytes})"))
        if self.inflight >= cfg.max_concurrency:
            return await fail(GatewayError(429, f"{self.inflight} requests in flight (limit {cfg.max_concurrency}); retry",
                                           {"Retry-After": "1"}))
        self.inflight += 1
        try:
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > cfg.max_body_bytes:
                    return await fail(GatewayError(413, f"request body is over {cfg.max_body_bytes} bytes"))
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            body, replayed = b"".join(chunks), False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            try:
                await asyncio.wait_for(self.app(scope, replay, send), cfg.request_timeout_s)
            except asyncio.TimeoutError:
                await fail(GatewayError(504, f"no answer within {cfg.request_timeout_s:g} s"))
        finally:
            self.inflight -= 1


def create_app(config: GatewayConfig, constraint: Constraint | None = None) -> Limits:
    """The gateway as an ASGI app (Starlette inside :class:`Limits`)."""
    gw = Gateway(config, constraint)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problem = await gw.upstream.not_ready()
        if problem:
            return JSONResponse({"status": "not ready", "reason": problem}, 503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "model": config.served_model, "model_version": config.model_version})

    async def metrics(request: Request) -> Response:
        return Response(gw.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)  # noqa: S101 - an invariant for the type checker, not a security check
        return error_response(request.url.path, exc)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return JSONResponse(error_body(request.url.path, 500, f"internal error ({type(exc).__name__}); see the gateway's log"), 500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await gw.aclose()

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
              *ollama_router.routes(gw), *openai_router.routes(gw)]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={GatewayError: on_gateway_error, Exception: on_unexpected})
    limited = Limits(app, gw)
    limited.gateway = gw  # type: ignore[attr-defined]
    return limited
