"""Spec sections for action safety and the rollout engine: what the gateway may let through, the
kill switch, the shadow stage. (Where decisions are reported is ``deployment.collector``, in
:mod:`sre_llm.spec.access`: the gateway posts to the collector rendered there.)

Kept apart from :mod:`sre_llm.spec.model` (which imports these with one field each) so that the
safety rules read in one place. Function names come from the catalog (a Literal built from
:data:`sre_llm.catalog.ACTIONS`), so a typo is an error with the list of names, not a policy that
silently allows nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sre_llm.catalog import ACTIONS, NONE
from sre_llm.spec.access import SecretKeySpec
from sre_llm.spec.strict import Strict
from sre_llm.spec.types import DnsName, Duration

FunctionName = Literal[tuple(sorted(ACTIONS))]  # type: ignore[valid-type]
ENGINES = ("flagger", "gitops")
Engine = Literal[ENGINES]  # type: ignore[valid-type]


class RateLimitSpec(Strict):
    function: FunctionName = Field(description="The LambdaFunction limited (per target: namespace and name).")
    max: int = Field(gt=0, description="At most this many decisions for one target within `per`; more become none.")
    per: Duration = Field("1h", description="The sliding window of the limit.")


def _default_rate_limits() -> list[RateLimitSpec]:
    # A crash-looping pod restarted every few minutes by the agent hides the cause and burns the
    # alert's signal; three times an hour is what an on-call person would try before looking.
    return [RateLimitSpec(function="pod-restart", max=3, per="1h"),
            RateLimitSpec(function="scale-deployment", max=3, per="1h")]


class PolicySpec(Strict):
    """Checked by the gateway after the guard, on every live decision (shadow answers are never acted on)."""

    allowed_functions: dict[str, list[FunctionName]] = Field(
        default_factory=dict,
        description="Functions allowed per namespace (the alert's namespace label); key '*' is every other "
        "namespace. Empty: every catalog function everywhere. A namespace not listed without '*': none only.",
    )
    rate_limits: list[RateLimitSpec] = Field(
        default_factory=_default_rate_limits,
        description="Per-target limits (one gateway replica counts its own decisions).",
    )


class KillSwitchSpec(Strict):
    configmap: str | None = Field(
        None, description="ConfigMap the gateway watches (key `enabled`: \"true\" makes every answer none); "
        "default <service>-killswitch. Mounted as a volume: the kubelet refreshes it, no RBAC needed.",
    )
    poll_seconds: float = Field(2.0, gt=0, le=60, description="How often the gateway re-reads the mounted key.")


class SafetySpec(Strict):
    policy: PolicySpec = Field(default_factory=PolicySpec, description="Allowed functions and rate limits.")
    kill_switch: KillSwitchSpec = Field(default_factory=KillSwitchSpec, description="Every answer none, in seconds.")


class ShadowSpec(Strict):
    """The first rollout stage: the challenger answers a copy of every request, only to be compared."""

    duration: Duration = Field("1h", description="How long the shadow stage runs at least.")
    min_samples: int = Field(100, gt=0, description="Shadow decisions needed before the gate can pass.")
    min_agreement: float = Field(
        0.9, ge=0, le=1, description="Share of shadow decisions equal to the champion's (function and parameters)."
    )


class FlaggerSpec(Strict):
    """Engine flagger: where Flagger runs (its webhook calls to the collector come from there)."""

    namespace: DnsName = Field("flagger-system", description="Namespace of Flagger's controller: the collector's "
                               "NetworkPolicy admits it to the webhook gates (/flagger/shadow|check|confirm).")
    webhook_timeout: str = Field("30s", pattern=r"^[1-9][0-9]*(s|m)$",
                                 description="How long Flagger waits for each webhook gate (they query Prometheus).")


class ConfigMapKeySpec(Strict):
    configmap: DnsName = Field(description="Name of the ConfigMap (in deployment.namespace).")
    key: str = Field("known_hosts", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$",
                     description="Key holding the value.")


class GitopsJobSpec(Strict):
    """Engine gitops: the rendered CronJob that runs ``sre-llm rollout analyze`` every
    ``rollout.analysis_interval``, the only writer of ``rollouts/`` (it clones, commits, pushes)."""

    repository: str = Field(pattern=r"^(ssh://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$",
                            description="The GitOps repository over ssh (ssh://git@host/org/repo.git or git@host:org/repo.git).")
    branch: str = Field("main", min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._/-]+$",
                        description="Branch Flux applies: cloned, and pushed to.")
    deploy_key: SecretKeySpec = Field(description="Secret key holding the deploy key (ssh private key, write access).")
    known_hosts: ConfigMapKeySpec = Field(description="ConfigMap key holding the git host's ssh known_hosts lines "
                                          "(ssh checks the host key strictly).")
    spec_path: str | None = Field(None, pattern=r"^[^/\s][^\s]*\.ya?ml$",
                                  description="The spec's path inside the repository (default: as rendered).")
    image: str | None = Field(None, description="sre-llm image that runs the job (default: deployment.gateway_image).")
    author: str = Field("sre-llm rollout <rollout@sre-llm.invalid>", pattern=r"^[^<>]+ <[^<>\s]+>$",
                        description="Commit author of the rollout commits.")
    pushgateway: str | None = Field(None, pattern=r"^https?://\S+$",
                                    description="Pushgateway the job pushes the loop's deployment and A/B success "
                                    "rates to after each change (the loop-health dashboard and alerts read them).")


__all__ = ["ENGINES", "NONE", "ConfigMapKeySpec", "Engine", "FlaggerSpec", "FunctionName", "GitopsJobSpec",
           "KillSwitchSpec", "PolicySpec", "RateLimitSpec", "SafetySpec", "ShadowSpec"]
