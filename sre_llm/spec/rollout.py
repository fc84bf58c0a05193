"""Spec section ``deployment.rollout``: A/B test, progressive steps, rollback thresholds and the
PromQL each arm is judged by.
"""


from typing import Annotated, Optional

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from sre_llm.spec.safety import Engine, FlaggerSpec, GitopsJobSpec, ShadowSpec
from sre_llm.spec.strict import Strict
from sre_llm.spec.types import Duration


class AbTestSpec(Strict):
    percent: int = Field(50, gt=0, lt=100, description="Traffic share of the challenger during the A/B test.")
    duration: Duration = Field("1h", description="How long the A/B test runs before the rollout starts.")


class RollbackSpec(Strict):
    min_success_rate: float = Field(0.90, ge=0, le=1, description="Roll back below this remediation success rate.")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="Roll back above this request error rate.")
    max_p95_latency_ms: float = Field(500, gt=0, description="Roll back above this P95 latency.")
    failure_threshold: int = Field(3, gt=0, description="Failed analyses before an automatic rollback.")
    min_samples: int = Field(100, gt=0, description="No decision before each arm has this many requests and remediations.")
    significance: float = Field(
        0.05, gt=0, lt=1,
        description="One-sided p-value below which the challenger counts as worse than the champion (two-proportion z-test).",
    )


def _promql(value: str) -> str:
    # Each query is run once per arm with $revision replaced; without it both arms read the same series.
    if "$revision" not in value:
        raise PydanticCustomError("promql", "must select by revision: write $revision where the revision name goes")
    return value


PromQL = Annotated[str, AfterValidator(_promql)]


class AnalysisQueriesSpec(Strict):
    """PromQL run per arm: ``$revision`` is the Knative revision, ``$namespace`` the namespace,
    ``$window`` the analysis window. Counts are totals over the window (the two-proportion test
    needs counts, not rates). The defaults read what this system emits: the gateway's metrics
    (labelled with its revision) and the collector's outcome counters (the gateway reports each
    decision's revision; Alertmanager's ``resolved`` notification closes it)."""

    requests: PromQL = Field(
        'sum(increase(sre_llm_gateway_requests_total{namespace="$namespace",revision="$revision",protocol!="ops"}[$window]))',
        description="Requests the revision's gateway answered in the window.",
    )
    errors: PromQL = Field(
        'sum(increase(sre_llm_gateway_requests_total{namespace="$namespace",revision="$revision",protocol!="ops",status=~"5.."}[$window]))',
        description="Requests that failed (5xx) in the window.",
    )
    p95_latency_ms: PromQL = Field(
        '1000 * histogram_quantile(0.95, sum by (le) (rate(sre_llm_gateway_request_duration_seconds_bucket{namespace="$namespace",revision="$revision",protocol!="ops"}[$window])))',
        description="P95 request latency in milliseconds.",
    )
    remediations: PromQL = Field(
        'sum(increase(sre_llm_remediation_outcomes_total{namespace="$namespace",revision="$revision",function!="none"}[$window]))',
        description="Remediations decided by this revision whose outcome the collector knows, in the window.",
    )
    remediation_successes: PromQL = Field(
        'sum(increase(sre_llm_remediation_outcomes_total{namespace="$namespace",revision="$revision",function!="none",outcome="resolved"}[$window]))',
        description="Of those, remediations after which the alert resolved within the outcome window.",
    )
    shadow_decisions: PromQL = Field(
        'sum(increase(sre_llm_shadow_decisions_total{namespace="$namespace",shadow_revision="$revision"}[$window]))',
        description="Shadow stage: live requests this revision answered in shadow (counted by the champion's gateway).",
    )
    shadow_agreements: PromQL = Field(
        'sum(increase(sre_llm_shadow_decisions_total{namespace="$namespace",shadow_revision="$revision",agree="true"}[$window]))',
        description="Shadow stage: of those, answers equal to the champion's (function and parameters).",
    )


class AnalysisSpec(Strict):
    window: Duration = Field("5m", description="Range the queries look back over ($window).")
    prometheus_url: str = Field(
        "http://prometheus-operated.monitoring:9090", pattern=r"^https?://\S+$",
        description="Prometheus the in-cluster analysis reads (Flagger's MetricTemplates, the gitops CronJob).",
    )
    queries: AnalysisQueriesSpec = Field(default_factory=AnalysisQueriesSpec, description="PromQL per metric, per arm.")


class RolloutSpec(Strict):
    engine: Engine = Field(
        "flagger", description="flagger: a Flagger Canary owns the traffic split (the Service carries no traffic); "
        "gitops: sre-llm's commit-per-stage engine, run by a rendered CronJob.")
    shadow: Optional[ShadowSpec] = Field(
        default_factory=ShadowSpec, description="First stage: the challenger answers copies of live requests, compared, never acted on.")
    ab_test: Optional[AbTestSpec] = Field(default_factory=AbTestSpec, description="A/B test before the rollout.")
    steps: list[Annotated[int, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: [10, 50, 100], min_length=1, description="Challenger traffic per step, ending at 100."
    )
    step_duration: Duration = Field("30m", description="Time at each step before analysis.")
    analysis_interval: Duration = Field("5m", description="How often metrics are checked.")
    rollback: RollbackSpec = Field(default_factory=RollbackSpec, description="Automatic rollback thresholds.")
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec, description="Prometheus queries read per arm.")
    flagger: FlaggerSpec = Field(default_factory=FlaggerSpec, description="Engine flagger: where Flagger runs.")
    gitops: Optional[GitopsJobSpec] = Field(
        None, description="Engine gitops: the repository the rendered analysis CronJob clones and pushes to "
        "(no CronJob without it).")
