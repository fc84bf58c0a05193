"""Spec section ``dataset``: how examples are labelled, redacted, split, encrypted and kept
(the sources themselves are in :mod:`sre_llm.spec.sources`).
"""


from typing import Literal, Optional

from pydantic import Field

from sre_llm.answer.references import ANSWER_FORMATS, DEFAULT_ANSWER_FORMAT
from sre_llm.spec.access import RetentionSpec
from sre_llm.spec.sources import Source, SyntheticSource
from sre_llm.spec.strict import Fraction, Strict
from sre_llm.spec.types import AgeRecipient, DnsName, Duration, Regex, SecretRef

AnswerFormat = Literal[ANSWER_FORMATS]  # type: ignore[valid-type]


class SplitSpec(Strict):
    train: Fraction = Field(0.8, description="Fraction of incidents in the training split.")
    validation: Fraction = Field(0.1, description="Fraction of incidents in the validation split.")
    test: Fraction = Field(0.1, description="Fraction of incidents in the held-out test split.")


class RedactionSpec(Strict):
    secrets: bool = Field(True, description="Redact tokens, keys and passwords.")
    url_credentials: bool = Field(True, description="Redact user:password@ in URLs.")
    emails: bool = Field(True, description="Redact e-mail addresses.")
    ips: bool = Field(True, description="Redact IPv4/IPv6 addresses.")
    extra_patterns: list[Regex] = Field(default_factory=list, description="More regular expressions to redact.")


class EncryptionSpec(Strict):
    recipients: list[AgeRecipient] = Field(min_length=1, description="age recipients the dataset is encrypted to.")
    identity: SecretRef = Field(description="age identity used to decrypt for training (env:/file: reference).")


class AugmentationSpec(Strict):
    random_values: Fraction = Field(
        0.0,
        description="Fraction of training examples whose copied parameter values are swapped for random ones of the "
        "same shape (teaches copying over remembering names; validation/test untouched).",
    )
    seed: int = Field(0, ge=0, description="Seed for choosing and rewriting the augmented examples.")


class LabellingSpec(Strict):
    self_resolve_window: Optional[Duration] = Field(
        "15m",
        description="An alert that ended (a resolved notification or an `endsAt`) within this long of its "
        "`startsAt`, with no action recorded and no label or annotation, is a `none` example (it resolved "
        "on its own). Alerts with no evidence at all are unlabelled: never trained or evaluated on, counted "
        "on the card and listed by `sre-llm dataset unlabelled`. Empty: resolving is never evidence.",
    )


class DatasetSpec(Strict):
    name: DnsName = Field("sre-remediation", description="Dataset name; files go to datasets/<name>/<digest>/.")
    sources: list[Source] = Field(
        default_factory=lambda: [SyntheticSource(type="synthetic")], min_length=1, description="Where examples come from."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="Split by incident; fractions sum to 1.")
    min_examples: int = Field(1000, gt=0, description="Refuse to train on fewer examples.")
    max_examples: int = Field(100_000, gt=0, description="Keep at most this many examples (newest first).")
    include_failed: bool = Field(False, description="Train on remediations that failed (marked) as well.")
    labelling: LabellingSpec = Field(
        default_factory=LabellingSpec, description="What counts as evidence of the right answer (see docs/dataset.md)."
    )
    redaction: RedactionSpec = Field(default_factory=RedactionSpec, description="What is redacted before writing.")
    encryption: Optional[EncryptionSpec] = Field(None, description="Encrypt dataset files at rest with age.")
    retention: RetentionSpec = Field(
        default_factory=RetentionSpec, description="How long raw payloads and built datasets are kept (`sre-llm dataset prune`)."
    )
    augmentation: AugmentationSpec = Field(
        default_factory=AugmentationSpec, description="Training-only augmentation (off by default)."
    )
    answer_format: AnswerFormat = Field(
        DEFAULT_ANSWER_FORMAT,
        description="How answers name parameter values. `labelref-v1`: each string value an alert label carries is "
        "written as agent-sre's template `{{ $labels.NAME }}` (measured: held-out parameter accuracy 0.84 after half "
        "an epoch, against 0.356 after five epochs on literal values); `literal-v1`: the values themselves. Recorded "
        "in run.json and the registry lineage; eval and the gateway expand references with the alert's labels.",
    )
