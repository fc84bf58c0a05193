"""The run's LLaMA Factory config: the rendered train.yaml with the per-run paths filled in.

Pure apart from reading and writing the YAML files. Only four keys change, and each is written as
an absolute path so the run folder's ``train.yaml`` reruns from anywhere:
``output_dir`` (a fresh folder per attempt — LLaMA Factory refuses a non-empty one),
``dataset_dir`` (the run's private view of the dataset), ``model_name_or_path`` (when it is a
local folder) and ``resume_from_checkpoint`` (``--resume`` only).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from sre_llm.errors import BadInput


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file; run `sre-llm render` for the spec") from None
    data = read_yaml_text(text)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: not a YAML mapping")
    return data


def read_yaml_text(text: str) -> Any:
    return YAML(typ="safe").load(text)


def dump_yaml(data: dict[str, Any], header: str = "") -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # keep the rendered order: it reads like LF's examples
    buf = io.StringIO()
    yaml.dump(data, buf)
    return header + buf.getvalue()


def run_config(
    rendered: dict[str, Any], base: Path, output_dir: Path, dataset_dir: Path, resume_from: Path | None = None,
) -> dict[str, Any]:
    """A new mapping: ``rendered`` with the run's paths; everything else exactly as rendered."""
    cfg = dict(rendered)
    model = str(cfg.get("model_name_or_path", ""))
    local = Path(model) if Path(model).is_absolute() else base / model
    if model and local.is_dir():
        cfg["model_name_or_path"] = str(local.resolve())
    cfg["output_dir"] = str(output_dir.resolve())
    cfg["dataset_dir"] = str(dataset_dir.resolve())
    if resume_from is not None:
        cfg["resume_from_checkpoint"] = str(resume_from.resolve())
    return cfg


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a rendered ``launcher.env``; comments and blanks skipped."""
    env: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise BadInput(f"{path}:{n}: expected KEY=VALUE, got {line!r}")
        env[key.strip()] = value.strip()
    return env
