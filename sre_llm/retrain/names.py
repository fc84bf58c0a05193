"""The loop's metric names: one table that the exporter, the dashboard and the alert rules share.

No imports: the renderer reads it on the render path."""

from __future__ import annotations

#: success rate metric → (spec.retrain.targets field, alert name, what it measures)
RATES: dict[str, tuple[str, str, str]] = {
    "sre_llm_data_collection_success_ratio": (
        "data_collection", "SreLlmDataCollectionBelowTarget",
        "Share of collected records that were stored and usable (not quarantined) in the last dataset build."),
    "sre_llm_fine_tuning_success_ratio": (
        "fine_tuning", "SreLlmFineTuningBelowTarget",
        "Share of recorded training runs of the release that succeeded (the last 20)."),
    "sre_llm_deployment_success_ratio": (
        "deployment", "SreLlmDeploymentBelowTarget",
        "Share of finished rollouts (the last 20) that completed; rolled back and aborted ones fail "
        "(`sre-llm rollout … --pushgateway`, from the rollout commits in git)."),
    "sre_llm_ab_test_success_ratio": (
        "ab_test", "SreLlmAbTestBelowTarget",
        "Share of ended A/B tests (the last 20) whose challenger advanced past the A/B stage "
        "(`sre-llm rollout … --pushgateway`, from the rollout commits in git)."),
}
CHAMPION_PROMOTED = "sre_llm_champion_promoted_timestamp_seconds"
GATE_FIGURE = "sre_llm_gate_figure"
GATE_THRESHOLD = "sre_llm_gate_threshold"
RETRAIN_OUTCOMES = "sre_llm_retrain_outcomes"
RETRAIN_LAST = "sre_llm_retrain_last_timestamp_seconds"
RETRAIN_P_VALUE = "sre_llm_retrain_p_value"
STALE_ALERT = "SreLlmChampionStale"
OUTCOMES = ("promoted", "refused", "skipped", "failed")
