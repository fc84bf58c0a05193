"""Spec section ``evaluation``: the gates a model must pass before it is promoted, and how it is scored.
"""


from typing import Literal

from pydantic import Field

from sre_llm.spec.strict import Strict


class GatesSpec(Strict):
    remediation_accuracy: float = Field(0.90, gt=0, le=1, description="Minimum share of right LambdaFunction choices.")
    parameter_accuracy: float = Field(0.95, gt=0, le=1, description="Minimum share of right function + parameters.")
    false_positive_rate: float = Field(0.05, ge=0, lt=1, description="Maximum share of actions where none was right.")
    p95_latency_ms: float = Field(500, gt=0, le=600_000, description="Maximum P95 inference latency (milliseconds).")


class EvaluationSpec(Strict):
    gates: GatesSpec = Field(default_factory=GatesSpec, description="Promotion gates; all must pass.")
    min_test_examples: int = Field(100, gt=0, description="Refuse to score on a smaller test split.")
    batch_size: int = Field(16, gt=0, le=4096, description="Examples generated per batch.")
    max_new_tokens: int = Field(128, gt=0, le=8192, description="Generation budget per answer.")
    adversarial: bool = Field(True, description="Also run the adversarial (prompt-injection) suite.")
    baseline: Literal["base", "champion", "none"] = Field("base", description="What the report compares against.")
    grounding: bool = Field(
        True,
        description="Also decode grounded (only catalog functions, the alert's labels and numbers, the canonical "
        "form: what the gateway serves) and judge the gates on those answers; raw figures are reported beside them.",
    )
