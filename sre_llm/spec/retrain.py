"""The spec's ``retrain`` section: the continuous-learning loop's schedule, decision and targets.

Its own module so that model.py stays one screenful per stage; model.py adds it as one field.
Read by `sre-llm retrain` (schedule, minimum of new data, significance of the paired test) and by
the renderer (the loop's Grafana dashboard and the PrometheusRules on its success rates).
"""

from __future__ import annotations

from pydantic import Field

from sre_llm.spec.strict import Strict
from sre_llm.spec.types import Duration


class LoopTargetsSpec(Strict):
    """The seed's success metrics: a PrometheusRule fires when a rate falls below its target."""

    data_collection: float = Field(0.99, gt=0, le=1, description="Minimum data collection success rate (records stored / received).")
    fine_tuning: float = Field(0.95, gt=0, le=1, description="Minimum fine-tuning success rate (runs succeeded / started).")
    deployment: float = Field(0.95, gt=0, le=1, description="Minimum deployment success rate (rollouts completed / finished).")
    ab_test: float = Field(0.90, gt=0, le=1, description="Minimum A/B success rate (challengers that advanced past the A/B stage / A/B tests ended).")
    alert_for: Duration = Field("15m", description="How long a rate must stay below target before its alert fires (`for:`).")


class RetrainSpec(Strict):
    incremental_every: Duration = Field(
        "7d", description="Minimum age of the champion before `sre-llm retrain` trains again (the workflow runs weekly)."
    )
    full_every: Duration = Field(
        "30d", description="Train from the base model (not the champion) when the last full training is older than this."
    )
    incremental_epochs: float | None = Field(
        None, gt=0, le=1000, description="Epochs of an incremental (warm-start) run; training.epochs when empty."
    )
    min_new_examples: int = Field(
        50, ge=1, description="Do not retrain on fewer new examples (incidents not in the champion's dataset)."
    )
    significance: float = Field(
        0.05, gt=0, lt=1,
        description="Two-sided p-value of McNemar's test (paired: both models answer the same examples) under "
        "which a challenger that wins more discordant pairs counts as better.",
    )
    branch_prefix: str = Field(
        "sre-llm/retrain", min_length=1, pattern=r"^[A-Za-z0-9._/-]+$",
        description="The promotion branch is <branch_prefix>-<name>-<version>; the workflow opens the pull request.",
    )
    targets: LoopTargetsSpec = Field(default_factory=LoopTargetsSpec, description="Targets of the loop's health alerts.")
