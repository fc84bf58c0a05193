"""Spec sections ``signing`` (who signs artifacts and whom verification trusts) and ``ci`` (what
the workflows need that the rest of the spec does not say).
"""


from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from sre_llm.spec.strict import Strict
from sre_llm.spec.types import SecretRef

_FINGERPRINT_HEX = frozenset("0123456789abcdef")


def _fingerprint(value: str) -> str:
    algo, _, hexed = value.partition(":")
    if algo != "sha256" or len(hexed) != 64 or not set(hexed) <= _FINGERPRINT_HEX:
        raise PydanticCustomError(
            "fingerprint",
            "must be a public key fingerprint sha256:<64 lower-case hex digits>, as `sre-llm registry keygen` "
            "prints (got {got})",
            {"got": repr(value)},
        )
    return value


KeyFingerprint = Annotated[str, AfterValidator(_fingerprint)]


class SigningSpec(Strict):
    method: Literal["key", "certificate", "sigstore"] = Field("key", description="OpenSSF model-signing method.")
    private_key: Optional[SecretRef] = Field(None, description="Private key (PEM) reference for key / certificate.")
    public_key: Optional[str] = Field(None, description="Public key (PEM) path used by verify for the key method.")
    certificate_chain: list[str] = Field(default_factory=list, description="Certificate files, signing cert first.")
    identity: Optional[str] = Field(None, description="Expected signer identity (sigstore).")
    oidc_issuer: Optional[str] = Field(None, description="Expected OIDC issuer (sigstore).")
    trusted_keys: list[KeyFingerprint] = Field(
        default_factory=list,
        description="The signers this release trusts: fingerprints (sha256 of the public key PEM, "
        "`sha256:<hex>`) of the keys (key method) or signing certificates' keys (certificate method) "
        "whose signatures `registry verify`, `promote` and `pull --verify` accept; any other signer is "
        "refused, naming its fingerprint. Empty: the key method trusts only public_key's fingerprint; "
        "sigstore signers are pinned by identity + oidc_issuer.",
    )


# ── CI ──────────────────────────────────────────────────────────────────────────────────────────


class CISpec(Strict):
    """What the pull-request, release and retrain workflows need to know that the rest does not say
    (read by `sre-llm plan --json`, so a workflow never parses the spec itself)."""

    runner: list[str] = Field(
        default_factory=list,
        description="runs-on labels of the job that trains, evaluates and registers in CI. Empty: "
        "`ubuntu-24.04` (GitHub-hosted) for training.device cpu, `[self-hosted, linux, x64, gpu]` for cuda.",
    )
    gpu_hour_cost: Optional[float] = Field(
        None, ge=0, description="Price of one GPU-hour; `sre-llm plan` multiplies the GPU-hours of the runs on record by it."
    )
    currency: str = Field("USD", min_length=1, max_length=8, description="Currency of gpu_hour_cost, as shown in the plan.")
    review: bool = Field(
        False,
        description="Promotion needs a person: on merge the release workflow opens a promotion pull request instead "
        "of promoting the registered version itself.",
    )
