"""Spec section ``dataset.sources``: where examples come from, one model per source kind,
chosen by ``type``. The collectors in :mod:`sre_llm.collect` read them.
"""


from typing import Annotated, Literal, Optional, Union

from pydantic import Field

from sre_llm.spec.strict import Strict
from sre_llm.spec.types import Duration, SecretRef


class PrometheusSource(Strict):
    type: Literal["prometheus"] = Field(description="Source kind.")
    url: str = Field(description="Prometheus base URL, e.g. http://prometheus.monitoring:9090.")
    query: str = Field('ALERTS{alertstate="firing"}', description="PromQL selector of firing alerts (query_range).")
    lookback: Duration = Field("30d", description="How far back to read alert history.")
    step: Duration = Field("1m", description="query_range resolution.")
    bearer_token: Optional[SecretRef] = Field(None, description="Bearer token reference (env:NAME or file:PATH).")


class AlertmanagerSource(Strict):
    type: Literal["alertmanager"] = Field(description="Source kind.")
    store: str = Field(description="Directory where `sre-llm collect serve` appends received webhook payloads.")
    listen: str = Field("127.0.0.1:9095", description="host:port the webhook receiver listens on.")
    bearer_token: Optional[SecretRef] = Field(None, description="Token Alertmanager must present (env:/file: reference).")
    tls_cert: Optional[str] = Field(None, description="TLS certificate file for the receiver.")
    tls_key: Optional[SecretRef] = Field(None, description="TLS private key reference (file:PATH).")


class RunbookSource(Strict):
    type: Literal["runbook"] = Field(description="Source kind.")
    path: str = Field(description="JSONL file or glob of agent-sre action logs.")


class LinearSource(Strict):
    type: Literal["linear"] = Field(description="Source kind.")
    url: str = Field("https://api.linear.app/graphql", description="Linear GraphQL endpoint.")
    token: SecretRef = Field(description="API key reference (env:NAME or file:PATH).")
    team: Optional[str] = Field(None, description="Team key to read issues from (all teams when empty).")
    lookback: Duration = Field("90d", description="Completed issues newer than this are read.")


class GitSource(Strict):
    type: Literal["git"] = Field(description="Source kind.")
    repo: str = Field(description="Path to a local clone of the infrastructure repository.")
    paths: list[str] = Field(default_factory=lambda: ["."], description="Paths whose merged changes count.")
    branch: str = Field("main", description="Branch to read merged commits from.")
    lookback: Duration = Field("90d", description="Commits newer than this are read.")


class LabelsSource(Strict):
    type: Literal["labels"] = Field(description="Source kind.")
    path: str = Field(
        description="CSV or JSONL file (or glob) of labels a person filled in, e.g. the output of "
        "`sre-llm dataset unlabelled`: per row `fingerprint` (with `startsAt` for one firing, without for "
        "every firing of that label set) or `alertname` + `namespace` + `startsAt`, then `lambda_function` "
        "(`none` = no action was needed) and `lambda_parameters` (a JSON object). Rows with an empty "
        "`lambda_function` are skipped. The strongest evidence: it wins over actions and annotations."
    )


class SyntheticSource(Strict):
    type: Literal["synthetic"] = Field(description="Source kind.")
    count: int = Field(2000, gt=0, le=1_000_000, description="Number of synthetic alerts to generate.")
    seed: int = Field(0, ge=0, description="Random seed; the same seed gives the same corpus.")


Source = Annotated[
    Union[PrometheusSource, AlertmanagerSource, RunbookSource, LinearSource, GitSource, LabelsSource, SyntheticSource],
    Field(discriminator="type"),
]
