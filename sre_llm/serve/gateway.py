"""The state every surface shares: settings, vLLM, the decider, metrics, the pass-through."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request

from sre_llm.serve import adapters
from sre_llm.serve.adapters.base import Adapter
from sre_llm.serve.config import GatewayConfig
from sre_llm.serve.decide import Alert, Constraint, Decider
from sre_llm.serve.errors import GatewayError
from sre_llm.serve.metrics import Metrics
from sre_llm.serve.passthrough import Passthrough
from sre_llm.serve.safety import KillSwitch, Safety, parse_rate_limit
from sre_llm.serve.sidecalls import Collector, Shadow
from sre_llm.serve.upstream import Upstream


class Gateway:
    def __init__(self, config: GatewayConfig, constraint: Constraint | None = None):
        self.config = config
        self.started = time.time()
        self.metrics = Metrics(config.model_version, config.revision)
        self.upstream = Upstream(config.upstream, config.served_model, config.request_timeout_s)
        self.safety = Safety(dict(config.allowed_functions), tuple(parse_rate_limit(r) for r in config.rate_limits),
                             KillSwitch(config.kill_switch, config.kill_switch_poll_s))
        self.collector = (Collector(config.collector, self.metrics, config.collector_token, config.collector_queue)
                          if config.collector else None)
        self.shadow = (Shadow(config.shadow, config.served_model, self.metrics, config.revision, config.shadow_queue)
                       if config.shadow else None)
        self.decider = Decider(config, self.upstream, self.metrics, constraint, self.safety, self.collector, self.shadow)
        self.passthrough = Passthrough(config.passthrough, config.passthrough_model) if config.passthrough else None

    async def aclose(self) -> None:
        for side in (self.collector, self.shadow):
            if side is not None:
                await side.aclose()
        await self.upstream.aclose()
        if self.passthrough:
            await self.passthrough.aclose()

    def check_model(self, name: Any) -> None:
        """404 for a model this gateway does not serve (Ollama's and OpenAI's answer)."""
        if name not in self.config.model_names:
            raise GatewayError(404, f"model {name!r} not found; this gateway serves {self.config.served_model!r}",
                               kind="NotFoundError")

    def route(self, prompt: str) -> tuple[Adapter, Alert] | None:
        """The adapter for ``prompt``; None means: pass it through (the caller checks there is one)."""
        found = adapters.match(prompt)
        if found is None and self.passthrough is None:
            raise GatewayError(422, "the prompt is not one this gateway understands (adapters: "
                                    f"{', '.join(adapters.names())}) and no pass-through upstream is configured "
                                    "(--passthrough / SRE_LLM_PASSTHROUGH_URL)", kind="invalid_request_error")
        return found


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or 400 with the reason."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatewayError(400, f"request body is not JSON: {exc}", kind="invalid_request_error") from None
    if not isinstance(body, dict):
        raise GatewayError(400, f"request body must be a JSON object (got {type(body).__name__})",
                           kind="invalid_request_error")
    return body


def parse_body(model: type, body: dict[str, Any], kind: str | None = None) -> Any:
    """``body`` as the protocol's pydantic request ``model``, or 400 with the reason."""
    from pydantic import ValidationError

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise GatewayError(400, validation_reason(exc), kind=kind) from None


def endpoint(gw: Gateway, fn: Any) -> Any:
    """The Starlette endpoint for ``fn(gw, request)``: how each surface's routes reach the gateway."""
    async def handle(request: Request) -> Any:
        return await fn(gw, request)
    return handle


def validation_reason(exc: Exception) -> str:
    """pydantic's errors as one line: ``field: message; …``."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors())
