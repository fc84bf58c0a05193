"""The gateway's settings: one frozen object, built by ``sre-llm gateway`` or ``sre-llm serve``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sre_llm.answer import DEFAULT_ANSWER_FORMAT


@dataclass(frozen=True)
class GatewayConfig:
    """What the gateway serves and the limits it keeps."""

    upstream: str  # vLLM's base URL, e.g. http://127.0.0.1:8001
    served_model: str  # the name vLLM serves the model under (and the name clients ask for)
    model_version: str = "unknown"  # the registry version: a label on every metric
    aliases: tuple[str, ...] = ()  # other names clients may use (agent-sre's MODEL_NAME)
    answer_format: str = DEFAULT_ANSWER_FORMAT  # what the model was trained to answer (run.json / lineage)
    # Greedy answers of at most this many tokens: the evaluator's max_new_tokens, so serving
    # answers what eval measured (a client's num_predict / max_tokens can only lower it).
    max_new_tokens: int = 64
    constrain: bool = True  # send the alert's grounding regex to vLLM (structured outputs)
    passthrough: str | None = None  # an Ollama for prompts no adapter understands (health reports)
    passthrough_model: str | None = None  # the model name to ask it for (default: the client's)
    max_body_bytes: int = 1 << 20  # agent-sre's prompt is ~4 KiB; a megabyte is plenty
    max_prompt_chars: int = 16_000  # the canonical prompt; vLLM's max_model_len bounds it again
    request_timeout_s: float = 120.0  # one request, end to end (vLLM's answer included)
    max_concurrency: int = 32  # requests in flight; more get 429 with Retry-After
    read_timeout_s: float = 30.0  # hypercorn: a client that sends nothing for this long is dropped
    # SRE_LLM_REVISION: a pinned copy of the champion (sre_llm.deploy.pinning) reports the revision
    # name the analysis knows it by; Knative reserves K_REVISION for itself.
    revision: str = field(default_factory=lambda: os.environ.get("SRE_LLM_REVISION") or os.environ.get("K_REVISION", "local"))
    # Action safety (sre_llm.serve.safety) and the calls beside each answer (sre_llm.serve.sidecalls).
    allowed_functions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (namespace or "*", functions); () = all
    rate_limits: tuple[str, ...] = ()  # "pod-restart=3/1h": per function and target, in this replica
    kill_switch: str | None = None  # a file, or a mounted ConfigMap's folder (key "enabled")
    kill_switch_poll_s: float = 2.0
    collector: str | None = None  # sre-llm collect serve's base URL: POST /decisions
    collector_token: str | None = None  # its bearer token (the value: read from a file or env by the CLI)
    collector_queue: int = 1000  # decisions buffered before they are dropped (and counted)
    shadow: str | None = None  # the challenger's gateway URL: copies of each live request, compared only
    shadow_queue: int = 256
    # OpenAI-style clients (/v1/*) must send "Authorization: Bearer <token>" when set. agent-sre's
    # Ollama client sends no header, so /api/* stays open: the NetworkPolicy and the cluster-local
    # route are its controls (docs/threat-model.md).
    client_token: str | None = None

    @property
    def model_names(self) -> frozenset[str]:
        """Every name a request may carry; Ollama's ``:latest`` tag is the same model."""
        names = {self.served_model, *self.aliases}
        return frozenset(names | {f"{n}:latest" for n in names})
