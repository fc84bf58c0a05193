"""``sre-llm plan``: what merging a spec change would do — which rendered files change, whether
the model must be retrained, which gates move, what the rollout does and what the retrain costs —
before any GPU time is spent. :func:`plan` computes it (read only); :mod:`.report` words it."""

from sre_llm.plan.compute import Plan, plan, resolve_base
from sre_llm.plan.report import markdown, text

__all__ = ["Plan", "markdown", "plan", "resolve_base", "text"]
