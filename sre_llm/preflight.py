"""Machine checks for a valid spec: what this machine lacks to run its training.

Separate from validation on purpose: validation looks only at the file and gives the same answer
everywhere; the preflight looks at this machine (torch, CUDA, packages, the model on disk). It
returns problems rather than raising, so callers decide (``train --dry-run`` exits 2 on them).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sre_llm.spec.model import ModelRelease
from sre_llm.spec.registry import BNB_OPTIMIZERS


@dataclass(frozen=True)
class Problem:
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


@dataclass(frozen=True)
class Machine:
    """What the preflight knows about a machine; ``probe()`` reads this one."""

    cuda_devices: int
    bf16_gpu: bool
    packages: frozenset[str]
    hub_offline: bool

    @classmethod
    def probe(cls) -> "Machine":
        names = ("torch", "bitsandbytes", "deepspeed", "flash_attn", "badam", "llamafactory")
        packages = frozenset(n for n in names if importlib.util.find_spec(n) is not None)
        devices, bf16 = 0, False
        if "torch" in packages:
            import torch  # only here: the preflight is not on the validate/render path

            if torch.cuda.is_available():
                devices = torch.cuda.device_count()
                bf16 = torch.cuda.is_bf16_supported()
        offline = any(os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
        return cls(devices, bf16, packages, offline)


def preflight(release: ModelRelease, machine: Machine | None = None, base: str | Path = ".") -> list[Problem]:
    """Every reason this machine cannot run ``release``'s training, each with the way out."""
    machine = machine or Machine.probe()
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(release, machine, Path(base)))
    return problems


def _packages(release: ModelRelease, m: Machine, base: Path) -> list[Problem]:
    t = release.spec.training
    out = []
    if "llamafactory" not in m.packages:
        out.append(Problem("spec.training", "LLaMA Factory is not installed: run `make setup` (or pip install 'sre-llm[train]')"))
    if (t.method == "qlora" or t.optimizer in BNB_OPTIMIZERS) and "bitsandbytes" not in m.packages:
        what = "method qlora" if t.method == "qlora" else f"optimizer {t.optimizer}"
        out.append(Problem("spec.training.method" if t.method == "qlora" else "spec.training.optimizer",
                           f"{what} needs bitsandbytes: pip install bitsandbytes, or use adamw_torch without qlora"))
    if t.badam is not None and "badam" not in m.packages:
        out.append(Problem("spec.training.badam", "BAdam needs the badam package: pip install badam"))
    if t.distributed.deepspeed_stage and "deepspeed" not in m.packages:
        out.append(Problem("spec.training.distributed.deepspeed_stage", "DeepSpeed is not installed: pip install deepspeed, or set deepspeed_stage: 0"))
    if t.flash_attn == "fa2" and "flash_attn" not in m.packages:
        out.append(Problem("spec.training.flash_attn", "fa2 needs the flash-attn package; use auto or sdpa"))
    return out


def _device(release: ModelRelease, m: Machine, base: Path) -> list[Problem]:
    t = release.spec.training
    out = []
    if t.device == "cuda" and m.cuda_devices == 0:
        out.append(Problem("spec.training.device", "cuda: no CUDA GPU on this machine; train on a GPU machine, or set device: cpu (small models only)"))
    need = t.distributed.gpus_per_node
    if t.device == "cuda" and 0 < m.cuda_devices < need:
        out.append(Problem("spec.training.distributed.gpus_per_node", f"{need} GPUs per node asked, this machine has {m.cuda_devices}"))
    if t.precision == "bf16" and t.device == "cuda" and m.cuda_devices and not m.bf16_gpu:
        out.append(Problem("spec.training.precision", "bf16: this GPU has no bf16 support; use fp16"))
    return out


def _model(release: ModelRelease, m: Machine, base: Path) -> list[Problem]:
    bm = release.spec.base_model
    if bm.path is not None:
        path = Path(bm.path) if Path(bm.path).is_absolute() else base / bm.path
        if not (path / "config.json").is_file():
            hint = "build it with `sre-llm base-model tiny`" if bm.builtin else "copy the model there"
            return [Problem("spec.base_model.path", f"{bm.path}: no model there (config.json missing); {hint}")]
        return []
    if m.hub_offline and not _in_hf_cache(bm.name or ""):
        return [Problem("spec.base_model.name", f"{bm.name} is not on disk and the hub is off (HF_HUB_OFFLINE): "
                        "download it where the hub is allowed, or set base_model.path to a local copy")]
    return []


def _in_hf_cache(repo_id: str) -> bool:
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    return (home / ("models--" + repo_id.replace("/", "--")) / "snapshots").is_dir()


CHECKS: list[Callable[[ModelRelease, Machine, Path], list[Problem]]] = [_packages, _device, _model]
