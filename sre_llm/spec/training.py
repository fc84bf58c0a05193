"""Spec section ``training``: LLaMA Factory's fine-tuning settings (method, LoRA, quantization,
BAdam, distribution); cluster training is :mod:`sre_llm.spec.cluster`.
"""


from typing import Literal, Optional

from pydantic import Field

from sre_llm.spec.cluster import ClusterSpec
from sre_llm.spec.registry import OPTIMIZERS, SCHEDULERS
from sre_llm.spec.strict import Strict

Optimizer = Literal[OPTIMIZERS]  # type: ignore[valid-type]
Scheduler = Literal[SCHEDULERS]  # type: ignore[valid-type]


class LoraSpec(Strict):
    rank: int = Field(8, gt=0, le=1024, description="LoRA rank (lora_rank).")
    alpha: Optional[int] = Field(None, gt=0, description="LoRA alpha (lora_alpha); 2 × rank when empty.")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout (lora_dropout).")
    targets: list[str] = Field(
        default_factory=lambda: ["all"], min_length=1, description="Modules to adapt (lora_target); `all` = every linear."
    )


class QuantizationSpec(Strict):
    bits: int = Field(4, description="Weight quantization of the frozen base for QLoRA: 4 or 8 (quantization_bit).")
    type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (quantization_type).")
    double_quantization: bool = Field(True, description="Quantize the quantization constants (double_quantization).")


class BadamSpec(Strict):
    mode: Literal["layer", "ratio"] = Field("layer", description="Block-coordinate mode (badam_mode).")
    switch_mode: Literal["ascending", "descending", "random", "fixed"] = Field(
        "ascending", description="Order blocks are updated in (badam_switch_mode)."
    )
    switch_interval: int = Field(50, gt=0, description="Steps between block switches (badam_switch_interval).")
    update_ratio: float = Field(0.05, gt=0, le=1, description="Fraction updated in ratio mode (badam_update_ratio).")


class DistributedSpec(Strict):
    nodes: int = Field(1, ge=1, description="Number of machines (NNODES).")
    gpus_per_node: int = Field(1, ge=1, description="GPUs used on each machine (NPROC_PER_NODE).")
    deepspeed_stage: Literal[0, 2, 3] = Field(0, description="DeepSpeed ZeRO stage; 0 = no DeepSpeed.")
    offload: bool = Field(False, description="Offload optimizer state (and ZeRO-3 parameters) to CPU memory.")
    master_addr: str = Field("127.0.0.1", description="Address of node 0 (MASTER_ADDR).")
    master_port: int = Field(29500, ge=1024, le=65535, description="Rendezvous port (MASTER_PORT).")


class TrainingSpec(Strict):
    method: Literal["lora", "qlora", "full"] = Field("lora", description="lora, qlora (LoRA on a quantized base) or full.")
    lora: Optional[LoraSpec] = Field(None, description="LoRA settings (lora and qlora); defaults when empty.")
    quantization: Optional[QuantizationSpec] = Field(None, description="Base-model quantization; qlora only.")
    badam: Optional[BadamSpec] = Field(None, description="Use BAdam (block-coordinate Adam); method full only.")
    learning_rate: float = Field(2e-4, gt=0, le=1, description="Peak learning rate.")
    batch_size: int = Field(8, gt=0, description="Per-device train batch size.")
    gradient_accumulation: int = Field(4, gt=0, description="Gradient accumulation steps.")
    epochs: float = Field(3.0, gt=0, le=1000, description="Training epochs (num_train_epochs).")
    max_steps: Optional[int] = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs).")
    warmup_steps: Optional[int] = Field(None, ge=0, description="Warm-up steps; exclusive with warmup_ratio.")
    warmup_ratio: Optional[float] = Field(None, ge=0, lt=1, description="Warm-up as a fraction of all steps.")
    scheduler: Scheduler = Field("cosine", description="Learning-rate schedule (lr_scheduler_type).")
    optimizer: Optimizer = Field("adamw_torch", description="Optimizer (optim), a transformers OptimizerNames value.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    seed: int = Field(42, ge=0, description="Random seed for data order and initialisation.")
    cutoff_len: int = Field(1024, gt=0, le=131072, description="Maximum tokens per example (cutoff_len).")
    precision: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="Training precision.")
    device: Literal["cuda", "cpu"] = Field("cuda", description="Train on GPUs (cuda) or on the CPU (use_cpu).")
    gradient_checkpointing: bool = Field(True, description="Trade compute for memory.")
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"] = Field("auto", description="Attention kernel.")
    logging_steps: int = Field(10, gt=0, description="Log loss every N steps.")
    save_steps: int = Field(500, gt=0, description="Checkpoint every N steps.")
    eval_steps: int = Field(500, gt=0, description="Evaluate the validation split every N steps.")
    eval_batch_size: int = Field(8, gt=0, description="Per-device evaluation batch size.")
    preprocessing_workers: int = Field(1, gt=0, le=256, description="Processes used to tokenize the dataset.")
    distributed: DistributedSpec = Field(default_factory=DistributedSpec, description="Several GPUs or nodes.")
    cluster: Optional[ClusterSpec] = Field(
        None, description="Train on Kubernetes through Kubeflow (`sre-llm train --cluster`); see docs/cluster-training.md."
    )
