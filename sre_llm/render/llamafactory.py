"""Spec → LLaMA Factory 0.9.5 arguments, explicit and grouped the way its example configs are.

Pure: no I/O, no LLaMA Factory import. Every value LLaMA Factory would otherwise derive in
``__post_init__`` (lora_alpha, template, cutoff_len, report_to, …) is written out, so the rendered
file says exactly what will run and stays byte-stable across LLaMA Factory releases.
"""

from __future__ import annotations

from sre_llm.spec.model import ModelRelease
from sre_llm.spec.registry import METHODS

Sections = dict[str, dict[str, object]]


def release_dir(release: ModelRelease, root: str = "rendered") -> str:
    return f"{root}/{release.metadata.name}/{release.metadata.version}"


def dataset_dir(release: ModelRelease) -> str:
    """Where the dataset pipeline publishes the current build (the executor may substitute a
    private decrypted copy)."""
    return f"datasets/{release.spec.dataset.name}/current"


def dataset_names(release: ModelRelease) -> dict[str, str]:
    name = release.spec.dataset.name.replace("-", "_")
    return {"train": f"{name}_train", "validation": f"{name}_validation", "test": f"{name}_test"}


def deepspeed_file(release: ModelRelease) -> str | None:
    dist = release.spec.training.distributed
    if dist.deepspeed_stage == 0:
        return None
    return f"ds_z{dist.deepspeed_stage}{'_offload' if dist.offload else ''}_config.json"


def is_distributed(release: ModelRelease) -> bool:
    dist = release.spec.training.distributed
    return dist.nodes * dist.gpus_per_node > 1 or dist.deepspeed_stage > 0


def train_args(release: ModelRelease, root: str = "rendered") -> Sections:
    """The train YAML's keys, by section, in a fixed order."""
    spec = release.spec
    base, t = spec.base_model, spec.training
    names = dataset_names(release)

    model: dict[str, object] = {"model_name_or_path": base.path or base.name}
    if base.name and base.revision:
        model["model_revision"] = base.revision
    model["trust_remote_code"] = base.trust_remote_code
    if t.method == "qlora" and t.quantization is not None:
        q = t.quantization
        model.update(
            quantization_bit=q.bits,
            quantization_method="bnb",
            quantization_type=q.type,
            double_quantization=q.double_quantization,
            upcast_layernorm=True,
        )
    model["flash_attn"] = t.flash_attn

    method: dict[str, object] = {"stage": "sft", "do_train": True, "finetuning_type": METHODS[t.method]}
    if t.lora is not None and t.method in ("lora", "qlora"):
        method.update(
            lora_rank=t.lora.rank,
            lora_alpha=t.lora.alpha,
            lora_dropout=t.lora.dropout,
            lora_target=",".join(t.lora.targets),
        )
    if t.badam is not None:
        method.update(
            use_badam=True,
            badam_mode=t.badam.mode,
            badam_switch_mode=t.badam.switch_mode,
            badam_switch_interval=t.badam.switch_interval,
            badam_update_ratio=t.badam.update_ratio,
            badam_verbose=0,
        )
    ds = deepspeed_file(release)
    if ds:
        method["deepspeed"] = f"{release_dir(release, root)}/{ds}"

    dataset = {
        "dataset": names["train"],
        "eval_dataset": names["validation"],
        "dataset_dir": dataset_dir(release),
        "template": base.template,
        "cutoff_len": t.cutoff_len,
        "packing": False,
        "overwrite_cache": True,
        "preprocessing_num_workers": t.preprocessing_workers,
        "dataloader_num_workers": 0,
    }

    output = {
        "output_dir": f"runs/{release.metadata.name}/{release.metadata.version}/output",
        "logging_steps": t.logging_steps,
        "save_steps": t.save_steps,
        "save_total_limit": 3,
        "plot_loss": False,
        "overwrite_output_dir": False,
        "save_only_model": False,
        "report_to": "none",
        "disable_tqdm": True,
    }

    train: dict[str, object] = {
        "per_device_train_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation,
        "learning_rate": t.learning_rate,
        "num_train_epochs": float(t.epochs),
        "max_steps": t.max_steps if t.max_steps is not None else -1,
        "lr_scheduler_type": t.scheduler,
        # transformers 5 deprecates warmup_ratio: render it only when the spec asks for a ratio.
        **({"warmup_ratio": t.warmup_ratio} if t.warmup_ratio is not None else {"warmup_steps": t.warmup_steps or 0}),
        "optim": t.optimizer,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "bf16": t.precision == "bf16",
        "fp16": t.precision == "fp16",
        "use_cpu": t.device == "cpu",
        "gradient_checkpointing": t.gradient_checkpointing,
        "seed": t.seed,
        "data_seed": t.seed,
        "ddp_timeout": 180000000,
    }

    evaluation = {
        "per_device_eval_batch_size": t.eval_batch_size,
        "eval_strategy": "steps",
        "eval_steps": t.eval_steps,
    }
    return {"model": model, "method": method, "dataset": dataset, "output": output, "train": train, "eval": evaluation}


def dataset_info(release: ModelRelease) -> dict[str, object]:
    """The ``dataset_info.json`` entries for the three splits (alpaca format)."""
    columns = {"prompt": "instruction", "query": "input", "response": "output"}
    return {
        name: {"file_name": f"{split}.jsonl", "formatting": "alpaca", "columns": columns}
        for split, name in dataset_names(release).items()
    }


def deepspeed_config(release: ModelRelease) -> dict[str, object]:
    """A ZeRO config in the shape of LLaMA Factory's examples/deepspeed (``auto`` lets the HF
    Trainer fill batch sizes and precision from the train YAML, so the two cannot disagree)."""
    dist = release.spec.training.distributed
    zero: dict[str, object] = {
        "stage": dist.deepspeed_stage,
        "overlap_comm": False,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if dist.deepspeed_stage == 2:
        zero.update(allgather_partitions=True, allgather_bucket_size=5e8, reduce_scatter=True, round_robin_gradients=True)
    else:
        zero.update(
            sub_group_size=1e9,
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
            stage3_max_live_parameters=1e9,
            stage3_max_reuse_distance=1e9,
            stage3_gather_16bit_weights_on_model_save=True,
        )
    if dist.offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if dist.deepspeed_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "zero_allow_untested_optimizer": True,
        "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16, "hysteresis": 2, "min_loss_scale": 1},
        "bf16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def launcher_env(release: ModelRelease) -> dict[str, str]:
    """Environment for ``llamafactory-cli train`` on each node; NODE_RANK is set per node."""
    dist = release.spec.training.distributed
    return {
        "FORCE_TORCHRUN": "1",
        "NNODES": str(dist.nodes),
        "NPROC_PER_NODE": str(dist.gpus_per_node),
        "MASTER_ADDR": dist.master_addr,
        "MASTER_PORT": str(dist.master_port),
    }
