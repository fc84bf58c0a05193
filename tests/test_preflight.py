"""Preflight: machine facts in, problems out (a Machine value, no patching)."""

from __future__ import annotations

from pathlib import Path

from sre_llm.preflight import Machine, preflight
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
CPU = Machine(cuda_devices=0, bf16_gpu=False, packages=frozenset({"torch", "llamafactory", "bitsandbytes"}), hub_offline=True)
GPU = Machine(cuda_devices=8, bf16_gpu=True, packages=frozenset({"torch", "llamafactory", "bitsandbytes", "badam"}), hub_offline=False)


def test_gpu_spec_on_cpu_machine() -> None:
    release = load_spec(ROOT / "specs" / "qwen2-7b-qlora.yaml").release
    assert [str(p) for p in preflight(release, CPU, base="/nonexistent")] == [
        "spec.training.device: cuda: no CUDA GPU on this machine; train on a GPU machine, or set device: cpu (small models only)",
        "spec.base_model.name: Qwen/Qwen2-7B is not on disk and the hub is off (HF_HUB_OFFLINE): download it where the hub is allowed, or set base_model.path to a local copy",
    ]


def test_gpu_spec_on_gpu_machine_is_fine() -> None:
    release = load_spec(ROOT / "specs" / "qwen2-7b-qlora.yaml").release
    assert preflight(release, GPU) == []


def test_missing_packages_and_gpus() -> None:
    release = load_spec(ROOT / "tests" / "fixtures" / "specs" / "multinode-zero3.yaml").release
    bare = Machine(cuda_devices=2, bf16_gpu=False, packages=frozenset({"torch"}), hub_offline=False)
    assert [p.setting for p in preflight(release, bare)] == [
        "spec.training", "spec.training.badam", "spec.training.distributed.deepspeed_stage",
        "spec.training.distributed.gpus_per_node", "spec.training.precision",
    ]


def test_builtin_tiny_model_missing_says_how_to_build(tmp_path: Path) -> None:
    release = load_spec(ROOT / "specs" / "tiny-cpu.yaml").release
    problems = [str(p) for p in preflight(release, CPU, base=tmp_path)]
    assert problems == [
        "spec.base_model.path: .cache/models/tiny-qwen2: no model there (config.json missing); build it with `sre-llm base-model tiny`",
    ]
