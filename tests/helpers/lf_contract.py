"""Feed rendered train configs to LLaMA Factory 0.9.5's own argument parser (run in a subprocess).

Usage: python lf_contract.py CONFIG.yaml... → one JSON line per config: {"config", "ok", "error", "adapted"}.

Extra keys are refused (LLaMA Factory's default: ALLOW_EXTRA_ARGS unset). A few values are adapted so
that the parse can go all the way through ``get_train_args`` on a CPU machine; the set of keys is
unchanged except ``deepspeed``, which needs the deepspeed package and a torchrun launch.
"""

from __future__ import annotations

import json
import os
import sys

import yaml

os.environ.pop("ALLOW_EXTRA_ARGS", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def adapt_for_cpu(args: dict) -> tuple[dict, list[str]]:
    args = dict(args)
    adapted = []
    if args.get("bf16") and not args.get("use_cpu"):
        args["use_cpu"] = True  # bf16 on CPU is accepted together with use_cpu
        adapted.append("use_cpu")
    if args.get("fp16"):
        args["fp16"] = False
        adapted.append("fp16")
    if args.pop("deepspeed", None):
        adapted.append("deepspeed")
    return args, adapted


def main(paths: list[str]) -> int:
    from llamafactory.hparams import get_train_args
    from llamafactory.hparams.parser import _TRAIN_ARGS
    from transformers import HfArgumentParser

    failures = 0
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            args = yaml.safe_load(fh)
        cpu_args, adapted = adapt_for_cpu(args)
        error = None
        try:
            # 1) strict keys, exactly as `llamafactory-cli train` parses a YAML
            HfArgumentParser(_TRAIN_ARGS).parse_dict(cpu_args, allow_extra_keys=False)
            # 2) every cross-argument check LLaMA Factory runs before loading the model
            get_train_args(cpu_args)
        except BaseException as exc:  # noqa: BLE001 - report anything, including SystemExit
            error = f"{type(exc).__name__}: {exc}"
            failures += 1
        print(json.dumps({"config": path, "ok": error is None, "error": error, "adapted": adapted}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
