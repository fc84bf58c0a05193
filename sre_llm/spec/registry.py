"""Registries the spec's choices come from: plain dicts, one place each.

Tests check that they agree with the installed LLaMA Factory / transformers, so a name that the
trainer would refuse is refused here first, before a GPU minute is spent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """A model architecture family and what LLaMA Factory needs to train it."""

    template: str  # LLaMA Factory chat template (``template:`` in the train YAML)
    model_type: str  # transformers ``config.model_type``
    description: str


FAMILIES: dict[str, Family] = {
    "qwen2": Family("qwen", "qwen2", "Qwen2 / Qwen2.5 (ChatML)"),
    "qwen3": Family("qwen3", "qwen3", "Qwen3"),
    "llama2": Family("llama2", "llama", "Llama 2 chat"),
    "llama3": Family("llama3", "llama", "Llama 3 / 3.1 / 3.2"),
    "yi": Family("yi", "llama", "Yi (01.AI)"),
    "mistral": Family("mistral", "mistral", "Mistral / Mixtral instruct"),
    "gemma": Family("gemma", "gemma", "Gemma"),
    "gemma2": Family("gemma2", "gemma2", "Gemma 2"),
    "gemma3": Family("gemma3", "gemma3_text", "Gemma 3 (text)"),
    "phi3": Family("phi", "phi3", "Phi-3"),
    "deepseek": Family("deepseek", "llama", "DeepSeek LLM chat"),
    "chatglm3": Family("chatglm3", "chatglm", "ChatGLM3"),
}

# transformers.training_args.OptimizerNames (transformers 4.55 - 5.6), the ``optim:`` values.
OPTIMIZERS: tuple[str, ...] = (
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_torch_xla",
    "adamw_torch_npu_fused",
    "adamw_apex_fused",
    "adafactor",
    "adamw_anyprecision",
    "adamw_torch_4bit",
    "adamw_torch_8bit",
    "ademamix",
    "sgd",
    "adagrad",
    "adamw_bnb_8bit",
    "adamw_8bit",
    "ademamix_8bit",
    "lion_8bit",
    "lion_32bit",
    "paged_adamw_32bit",
    "paged_adamw_8bit",
    "paged_ademamix_32bit",
    "paged_ademamix_8bit",
    "paged_lion_32bit",
    "paged_lion_8bit",
    "rmsprop",
    "rmsprop_bnb",
    "rmsprop_bnb_8bit",
    "rmsprop_bnb_32bit",
    "galore_adamw",
    "galore_adamw_8bit",
    "galore_adafactor",
    "galore_adamw_layerwise",
    "galore_adamw_8bit_layerwise",
    "galore_adafactor_layerwise",
    "lomo",
    "adalomo",
    "grokadamw",
    "schedule_free_radam",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "apollo_adamw",
    "apollo_adamw_layerwise",
    "stable_adamw",
)

# Optimizers that need bitsandbytes (checked by the preflight, not by validation).
BNB_OPTIMIZERS = frozenset(o for o in OPTIMIZERS if "8bit" in o or "bnb" in o or o.startswith(("paged_", "lion_")))

# transformers.trainer_utils.SchedulerType, the ``lr_scheduler_type:`` values.
SCHEDULERS: tuple[str, ...] = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
    "greedy",
)

# Training methods and how each maps onto LLaMA Factory's ``finetuning_type``.
METHODS: dict[str, str] = {"lora": "lora", "qlora": "lora", "full": "full"}

# DeepSpeed ZeRO stages sre-llm renders a config for (0 = no DeepSpeed).
ZERO_STAGES: tuple[int, ...] = (0, 2, 3)
