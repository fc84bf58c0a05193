"""The canonical decision: alert ─► canonical prompt (+ grounding regex) ─► vLLM ─► guard.

Every consumer's request ends here, whatever its protocol: the model only ever sees the project's
own prompt (:data:`~sre_llm.answer.INSTRUCTION` and :func:`~sre_llm.answer.render_input`), and no
answer leaves without :func:`~sre_llm.answer.guard` (which also expands label references to the
alert's real values).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sre_llm.answer import INSTRUCTION, Decision, guard, render_input, vllm_regex
from sre_llm.answer.fingerprint import fingerprint
from sre_llm.catalog import NONE
from sre_llm.serve.config import GatewayConfig
from sre_llm.serve.errors import GatewayError
from sre_llm.serve.metrics import Metrics
from sre_llm.serve.safety import KILL_SWITCH, Safety
from sre_llm.serve.upstream import Upstream

#: True while serving a shadow copy from a champion's gateway (header X-Sre-Llm-Shadow, set by
#: the app's middleware): such an answer is compared, never acted on, so it is not reported, does
#: not count toward rate limits, is not shadowed again, and ignores the kill switch.
SHADOW_REASON = "shadow copy: compared by the champion's gateway, never acted on"
SHADOW_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("sre_llm_shadow_request", default=False)


@dataclass(frozen=True)
class Alert:
    """What an adapter extracted from a consumer's request."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unknown")


@dataclass(frozen=True)
class Answer:
    """The guarded decision and how it came about."""

    alert: Alert
    decision: Decision
    model_text: str  # what the model said, before the guard
    constrained: bool
    prompt_tokens: int
    completion_tokens: int
    upstream_s: float
    shadow: Decision | None = None  # a shadow copy's guarded decision: for the champion's comparison only

    def extension(self) -> dict[str, Any]:
        """The ``sre_llm`` field beside each reply: the verdict, for logs and tests."""
        d = self.decision
        out = {"function": d.function, "parameters": d.parameters, "refused": d.refused, "reason": d.reason,
               "proposed": d.proposed, "model_text": self.model_text, "constrained": self.constrained}
        if self.shadow is not None:
            s = self.shadow
            out["shadow"] = {"function": s.function, "parameters": s.parameters, "refused": s.refused, "reason": s.reason}
        return out


def canonical_prompt(alert: Alert) -> str:
    """The user turn the model was trained on: instruction and alert joined as LLaMA Factory's
    alpaca converter joins ``instruction`` and ``input`` (with a newline)."""
    return "\n".join(x for x in (INSTRUCTION, render_input(alert.labels, alert.annotations)) if x)


def strings(mapping: Mapping[Any, Any] | None) -> dict[str, str]:
    """Alert labels and annotations as Alertmanager has them: strings."""
    return {str(k): v if isinstance(v, str) else str(v) for k, v in (mapping or {}).items()}


Constraint = Callable[[Alert], "str | None"]


def grounding_constraint(answer_format: str) -> Constraint:
    """The default constraint: the alert's grounding as a regex (vLLM structured outputs)."""
    return lambda alert: vllm_regex(alert.labels, alert.annotations, answer_format)


class Decider:
    """Turns an :class:`Alert` into a guarded :class:`Answer` through vLLM."""

    def __init__(self, config: GatewayConfig, upstream: Upstream, metrics: Metrics, constraint: Constraint | None = None,
                 safety: Safety | None = None, collector: Any = None, shadow: Any = None):
        self.config = config
        self.upstream = upstream
        self.metrics = metrics
        self.safety = safety or Safety()
        self.collector = collector  # sidecalls.Collector: each live decision, reported
        self.shadow = shadow  # sidecalls.Shadow: each live request, asked of the challenger too
        if constraint is None and config.constrain:
            constraint = grounding_constraint(config.answer_format)
        self.constraint = constraint

    async def decide(self, alert: Alert, max_tokens: int | None = None) -> Answer:
        prompt = canonical_prompt(alert)
        if len(prompt) > self.config.max_prompt_chars:
            raise GatewayError(413, f"the alert renders to a {len(prompt)}-character prompt "
                                    f"(limit {self.config.max_prompt_chars})", kind="invalid_request_error")
        live = not SHADOW_REQUEST.get()
        killed = self.safety.killed() if live else None
        self.metrics.killed(killed is not None)
        if killed:  # no vLLM call: the switch must work when the model is the problem
            decision = Decision(NONE, {}, reason=killed)
            self.metrics.decision(NONE, killed, None, KILL_SWITCH)
            self._report(alert, decision)
            return Answer(alert, decision, "", False, 0, 0, 0.0)
        budget = self.config.max_new_tokens if not max_tokens or max_tokens <= 0 else min(max_tokens, self.config.max_new_tokens)
        regex = self.constraint(alert) if self.constraint else None
        t0 = time.perf_counter()
        try:
            completion = await asyncio.wait_for(self.upstream.chat(prompt, budget, regex), self.config.request_timeout_s)
        except asyncio.TimeoutError:
            raise GatewayError(504, f"vLLM did not answer within {self.config.request_timeout_s:g} s", kind="timeout") from None
        upstream_s = time.perf_counter() - t0
        guarded = guard(completion.text, alert.labels, alert.annotations, answer_format=self.config.answer_format)
        decision, block = self.safety.check(guarded, alert.labels) if live else (guarded, None)
        self.metrics.decision(decision.function, decision.reason, upstream_s, block)
        if live:
            self._report(alert, decision)
            if self.shadow is not None:  # the model's answers are compared, before the policy
                self.shadow.compare(prompt, guarded)
            return Answer(alert, decision, completion.text, regex is not None, completion.prompt_tokens,
                          completion.completion_tokens, upstream_s)
        # A shadow copy skips the policy, the kill switch and the reports (the champion compares the
        # model's guarded answer; the challenger's rate budget is not spent). What it *returns* is
        # therefore always "no action": a client that sets the shadow header itself gets nothing to
        # act on, so the header cannot be used to get around the policy.
        return Answer(alert, Decision(NONE, {}, reason=SHADOW_REASON), completion.text, regex is not None,
                      completion.prompt_tokens, completion.completion_tokens, upstream_s, shadow=guarded)

    def _report(self, alert: Alert, decision: Decision) -> None:
        if self.collector is not None:
            self.collector.report(fingerprint(alert.labels), decision.function)
