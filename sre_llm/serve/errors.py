"""The one error the gateway raises on purpose: an HTTP status with a reason for the client."""

from __future__ import annotations


class GatewayError(Exception):
    """A 4xx/5xx answer: ``status``, a one-line ``reason``, extra ``headers`` (``Retry-After``)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None, kind: str | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self.kind = kind  # OpenAI's error type; derived from the status when None


def unavailable(reason: str, retry_after: int = 5) -> GatewayError:
    """vLLM down or still loading: 503, come back later."""
    return GatewayError(503, reason, {"Retry-After": str(retry_after)}, "service_unavailable")
