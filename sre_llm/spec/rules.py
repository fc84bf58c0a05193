"""Cross-field rules, and normalisation of a valid spec into explicit values.

The rules read the raw document (with the models' defaults for absent keys) rather than the
validated model, so that they still run when some unrelated field is invalid: a spec with LoRA +
BAdam *and* a misspelt optimizer gets both errors in one pass. A rule stays silent when a value it
needs is itself invalid; pydantic reports that one.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

from pydantic import BaseModel

from sre_llm.spec.model import ModelRelease
from sre_llm.spec.registry import FAMILIES

Loc = tuple
Problem = tuple[Loc, str]
_MISSING = object()
_BRANCHES = {"main", "master", "head", "dev", "develop", "latest"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

T = "spec", "training"
D = "spec", "dataset"


class View:
    """Read values from the raw document by location, falling back to the model's defaults."""

    def __init__(self, raw: Any):
        self.raw = raw

    def given(self, *loc: Any) -> Any:
        node = self.raw
        for part in loc:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return _MISSING
        return node

    def get(self, *loc: Any) -> Any:
        value = self.given(*loc)
        return _default(self.raw, loc) if value is _MISSING else value

    def num(self, *loc: Any) -> float | None:
        value = self.get(*loc)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _default(raw: Any, loc: tuple) -> Any:
    from sre_llm.spec.load import model_at

    # The parent may be absent or given as null: then its own default object supplies the value.
    for depth in range(len(loc) - 1, -1, -1):
        model = model_at(loc[:depth], raw)
        if model is None:
            return None
        field = model.model_fields.get(loc[depth])
        if field is None:
            return None
        value = field.get_default(call_default_factory=True)
        for part in loc[depth + 1 :]:
            value = getattr(value, part, None) if isinstance(value, BaseModel) else None
        if depth == len(loc) - 1 or value is not None:
            return value
    return None


RULES: list[Callable[[View], Iterator[Problem]]] = []


def rule(fn: Callable[[View], Iterator[Problem]]) -> Callable[[View], Iterator[Problem]]:
    RULES.append(fn)
    return fn


def check(raw: Any) -> list[Problem]:
    """Every cross-field problem of the raw document, in rule order."""
    if not isinstance(raw, dict) or not isinstance(raw.get("spec"), dict):
        return []
    view = View(raw)
    return [problem for fn in RULES for problem in fn(view)]


# ── base model ──────────────────────────────────────────────────────────────────────────────────


@rule
def _base_model_source(v: View) -> Iterator[Problem]:
    B = ("spec", "base_model")
    if not isinstance(v.given(*B), dict):
        return
    name, path = v.given(*B, "name"), v.given(*B, "path")
    has_name, has_path = name not in (_MISSING, None), path not in (_MISSING, None)
    if has_name == has_path:
        yield B, "give exactly one of name (a hub id) or path (a local directory)"
    if has_name and isinstance(name, str):
        if not _HUB_ID.match(name):
            yield (*B, "name"), f"must be a hub id such as Qwen/Qwen2-7B (got {name!r}); use path for a local directory"
        revision = v.get(*B, "revision")
        # An absent revision is allowed (the preflight warns); a branch name is a pin that moves.
        if isinstance(revision, str) and revision.lower() in _BRANCHES:
            yield (*B, "revision"), f"{revision!r} is a branch and moves; pin a commit hash or tag"
    if has_path and v.given(*B, "revision") not in (_MISSING, None):
        yield (*B, "revision"), "applies to hub models only; a local path is used as it is"
    if v.get(*B, "builtin") == "tiny" and not has_path:
        yield (*B, "builtin"), "needs path: the directory the built-in model is built into"


@rule
def _family_template(v: View) -> Iterator[Problem]:
    family, template = v.get("spec", "base_model", "family"), v.get("spec", "base_model", "template")
    if template is None or family not in FAMILIES:
        return
    expected = FAMILIES[family].template
    if template != expected:
        yield ("spec", "base_model", "template"), f"family {family} uses LLaMA Factory template {expected} (got {template!r})"


# ── dataset ─────────────────────────────────────────────────────────────────────────────────────


@rule
def _split_sums_to_one(v: View) -> Iterator[Problem]:
    parts = {k: v.num(*D, "split", k) for k in ("train", "validation", "test")}
    if any(p is None for p in parts.values()):
        return
    total = sum(parts.values())  # type: ignore[arg-type]
    if abs(total - 1.0) > 1e-6:
        detail = " + ".join(f"{k} {p:g}" for k, p in parts.items())
        yield (*D, "split"), f"fractions must sum to 1 (got {total:g} = {detail})"
    if parts["train"] == 0:
        yield (*D, "split", "train"), "must be > 0: a model needs training examples"
    if parts["test"] == 0:
        yield (*D, "split", "test"), "must be > 0: the gates are measured on the test split"


@rule
def _example_bounds(v: View) -> Iterator[Problem]:
    low, high = v.num(*D, "min_examples"), v.num(*D, "max_examples")
    if low is not None and high is not None and low > high:
        yield (*D, "min_examples"), f"must be <= max_examples (got {low:g} > {high:g})"
    test, need = v.num(*D, "split", "test"), v.num("spec", "evaluation", "min_test_examples")
    if high is not None and test is not None and need is not None and 0 < test and high * test < need:
        yield ("spec", "evaluation", "min_test_examples"), (
            f"can never be met: max_examples {high:g} × split.test {test:g} = {high * test:g} test examples at most"
        )


# ── training ────────────────────────────────────────────────────────────────────────────────────


@rule
def _method_settings(v: View) -> Iterator[Problem]:
    method = v.get(*T, "method")
    if method not in ("lora", "qlora", "full"):
        return
    if method in ("lora", "qlora") and v.given(*T, "badam") not in (_MISSING, None):
        yield (*T, "badam"), (
            f"BAdam is for method full; LLaMA Factory refuses LoRA with BAdam (got method {method})"
        )
    quant = v.given(*T, "quantization")
    if method == "qlora":
        bits = v.get(*T, "quantization", "bits")
        if quant in (_MISSING, None):
            yield (*T, "quantization"), "method qlora needs quantization with bits: 4 or 8"
        elif isinstance(bits, int) and not isinstance(bits, bool) and bits not in (4, 8):
            yield (*T, "quantization", "bits"), f"method qlora needs 4- or 8-bit quantization (got {bits})"
    elif quant not in (_MISSING, None):
        yield (*T, "quantization"), f"quantizes the base for method qlora only (got method {method})"
    if method == "full" and v.given(*T, "lora") not in (_MISSING, None):
        yield (*T, "lora"), "LoRA settings have no effect with method full; remove them or use lora/qlora"


@rule
def _warmup(v: View) -> Iterator[Problem]:
    if v.given(*T, "warmup_steps") not in (_MISSING, None) and v.given(*T, "warmup_ratio") not in (_MISSING, None):
        yield (*T, "warmup_ratio"), "give warmup_steps or warmup_ratio, not both"


@rule
def _device(v: View) -> Iterator[Problem]:
    device, precision = v.get(*T, "device"), v.get(*T, "precision")
    nodes, gpus = v.num(*T, "distributed", "nodes"), v.num(*T, "distributed", "gpus_per_node")
    stage = v.get(*T, "distributed", "deepspeed_stage")
    if device == "cpu":
        if precision == "fp16":
            yield (*T, "precision"), "fp16 needs a GPU; use bf16 or fp32 with device: cpu"
        if (nodes or 1) > 1 or (gpus or 1) > 1:
            yield (*T, "distributed"), "several GPUs or nodes need device: cuda"
        if stage in (2, 3):
            yield (*T, "distributed", "deepspeed_stage"), "DeepSpeed needs device: cuda"
    if v.given(*T, "badam") not in (_MISSING, None) and ((nodes or 1) > 1 or (gpus or 1) > 1):
        mode = v.get(*T, "badam", "mode")
        if mode == "ratio":
            yield (*T, "badam", "mode"), "ratio-mode BAdam cannot train on several GPUs; use layer"
        elif stage != 3:
            yield (*T, "distributed", "deepspeed_stage"), "layer-wise BAdam on several GPUs needs DeepSpeed ZeRO stage 3"


# ── deployment and signing ──────────────────────────────────────────────────────────────────────


@rule
def _rollout(v: View) -> Iterator[Problem]:
    R = ("spec", "deployment", "rollout")
    steps = v.get(*R, "steps")
    if isinstance(steps, list) and steps and all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        if any(b <= a for a, b in zip(steps, steps[1:])):
            yield (*R, "steps"), f"must increase step by step (got {steps})"
        elif steps[-1] != 100:
            yield (*R, "steps"), f"must end at 100 so the rollout completes (got {steps})"
    S = ("spec", "deployment", "scaling")
    low, high = v.num(*S, "min_replicas"), v.num(*S, "max_replicas")
    if low is not None and high is not None and low > high:
        yield (*S, "min_replicas"), f"must be <= max_replicas (got {low:g} > {high:g})"


@rule
def _signing(v: View) -> Iterator[Problem]:
    G = ("spec", "signing")
    method = v.get(*G, "method")
    has_key = v.given(*G, "private_key") not in (_MISSING, None)
    chain = v.get(*G, "certificate_chain")
    if method in ("key", "certificate") and not has_key and v.given(*G) is not _MISSING:
        yield G, f"method {method} needs private_key (env:NAME or file:PATH)"
    if method == "certificate" and not chain:
        yield G, "method certificate needs certificate_chain (the signing certificate first)"
    if method == "sigstore" and has_key:
        yield (*G, "private_key"), "method sigstore signs keyless; remove private_key"


# ── normalisation ───────────────────────────────────────────────────────────────────────────────


def normalize(release: ModelRelease) -> ModelRelease:
    """Fill derived values in explicitly, returning a new release (LLaMA Factory derives some of
    these itself when absent; rendering them keeps the config honest and byte-stable)."""
    spec = release.spec
    base = spec.base_model
    if base.template is None:
        base = base.model_copy(update={"template": FAMILIES[base.family].template})
    training = spec.training
    if training.method in ("lora", "qlora"):
        from sre_llm.spec.model import LoraSpec

        lora = training.lora or LoraSpec()
        if lora.alpha is None:
            lora = lora.model_copy(update={"alpha": 2 * lora.rank})
        training = training.model_copy(update={"lora": lora})
    return release.model_copy(update={"spec": spec.model_copy(update={"base_model": base, "training": training})})
