"""Prometheus metrics of one gateway, each labelled with the model version and the Knative revision."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,  # noqa: F401  (re-exported for /metrics)
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def reason_class(reason: str) -> str:
    """A guard reason as a small, fixed set of label values (reasons carry alert values)."""
    if reason.startswith("unparseable"):
        return "unparseable"
    if reason.startswith("unknown LambdaFunction"):
        return "unknown_function"
    if reason.startswith("answer is"):
        return "malformed"
    if "none takes no parameters" in reason:
        return "none_with_parameters"
    if "is protected" in reason:
        return "protected_namespace"
    if "not a label of the alert" in reason or "does not appear in the alert" in reason or "label" in reason:
        return "ungrounded"
    if "replicas" in reason and ("limit" in reason or "minimum" in reason):
        return "replicas_out_of_bounds"
    return "invalid_parameters"


PROTOCOLS = ("ollama", "openai")
SERVER_ERRORS = ("500", "502", "503", "504")


class Metrics:
    """The gateway's counters and histogram in their own registry (one per app)."""

    def __init__(self, model_version: str, revision: str):
        self.registry = CollectorRegistry(auto_describe=True)
        self.base = {"model_version": model_version, "revision": revision}
        common = ["model_version", "revision"]
        self.requests = Counter("sre_llm_gateway_requests", "Requests by protocol and HTTP status.",
                                ["protocol", "status", *common], registry=self.registry)
        # Exported at 0 from the start: a series born at its first error starts at N, and
        # increase()/rate() see nothing until the next scrape — the rollout analysis would read a
        # burst of errors in a new revision as no errors at all.
        for protocol in PROTOCOLS:
            for status in ("200", *SERVER_ERRORS):
                self.requests.labels(protocol=protocol, status=status, **self.base)
        self.decisions = Counter("sre_llm_gateway_decisions", "Guarded decisions by LambdaFunction (none included).",
                                 ["function", *common], registry=self.registry)
        self.guard_blocks = Counter("sre_llm_gateway_guard_blocks", "Model answers the guard refused, by reason.",
                                    ["reason", *common], registry=self.registry)
        self.latency = Histogram("sre_llm_gateway_request_duration_seconds", "Request latency by protocol.",
                                 ["protocol", *common], buckets=_BUCKETS, registry=self.registry)
        self.upstream_latency = Histogram("sre_llm_gateway_vllm_duration_seconds", "Time vLLM took per decision.",
                                          common, buckets=_BUCKETS, registry=self.registry)
        self.kill_switch = Gauge("sre_llm_gateway_kill_switch", "1 while the kill switch makes every answer none.",
                                 common, registry=self.registry)
        self.kill_switch.labels(**self.base).set(0)
        self.sidecalls = Counter("sre_llm_gateway_sidecalls", "Decision reports and shadow copies sent.",
                                 ["target", *common], registry=self.registry)
        self.sidecall_drops = Counter("sre_llm_gateway_sidecall_dropped",
                                      "Decision reports and shadow copies not delivered (queue full, error), by reason.",
                                      ["target", "reason", *common], registry=self.registry)
        self.shadow_decisions = Counter("sre_llm_shadow_decisions",
                                        "Shadow answers of the challenger (shadow_revision), equal to this gateway's or not.",
                                        ["agree", "shadow_revision", *common], registry=self.registry)
        self.shadow_blocks = Counter("sre_llm_shadow_guard_blocks", "Shadow answers the challenger's guard refused, by reason.",
                                     ["reason", "shadow_revision", *common], registry=self.registry)

    def request(self, protocol: str, status: int, seconds: float) -> None:
        self.requests.labels(protocol=protocol, status=str(status), **self.base).inc()
        self.latency.labels(protocol=protocol, **self.base).observe(seconds)

    def decision(self, function: str, reason: str | None, upstream_s: float | None, block: str | None = None) -> None:
        """One served decision; ``block`` names a safety refusal's class (else the guard's reason is classed)."""
        self.decisions.labels(function=function, **self.base).inc()
        if reason is not None:
            self.guard_blocks.labels(reason=block or reason_class(reason), **self.base).inc()
        if upstream_s is not None:
            self.upstream_latency.labels(**self.base).observe(upstream_s)

    def killed(self, on: bool) -> None:
        self.kill_switch.labels(**self.base).set(1 if on else 0)

    def sidecall_sent(self, target: str) -> None:
        self.sidecalls.labels(target=target, **self.base).inc()

    def sidecall_dropped(self, target: str, reason: str) -> None:
        self.sidecall_drops.labels(target=target, reason=reason, **self.base).inc()

    def shadow(self, shadow_revision: str, agree: bool, block: str | None) -> None:
        self.shadow_decisions.labels(agree=str(agree).lower(), shadow_revision=shadow_revision, **self.base).inc()
        if block is not None:
            self.shadow_blocks.labels(reason=block, shadow_revision=shadow_revision, **self.base).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
