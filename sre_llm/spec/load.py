"""Load a spec file: YAML with positions → pydantic → cross-field rules → one list of diagnostics.

Every problem is reported at once, each as ``file:line:col: dotted.path: message``; the position is
the offending value (or key, for unknown and duplicate keys) in the user's file.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from sre_llm.errors import BadInput, Diagnostic, SpecInvalid
from sre_llm.spec import rules
from sre_llm.spec.limits import MAX_SPEC_BYTES, check_shape, count_nodes, read_capped
from sre_llm.spec.model import ModelRelease


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from."""

    path: str  # as the user named it (used in messages and rendered headers)
    text: str
    release: ModelRelease

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.text.encode()).hexdigest()


def load_spec(path: str | Path) -> LoadedSpec:
    """Read, parse and validate one spec file; raise :class:`SpecInvalid` with every problem."""
    shown = str(path)
    try:
        data = read_capped(Path(path), shown)
    except FileNotFoundError:
        raise BadInput(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{shown}: is a directory, not a spec file") from None
    except OSError as exc:
        raise BadInput(f"{shown}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecInvalid([Diagnostic(shown, 0, 0, "", f"not UTF-8 text (byte {exc.start})")]) from None
    return LoadedSpec(shown, text, parse_spec(text, shown))


def parse_spec(text: str, filename: str = "<spec>") -> ModelRelease:
    """Validate spec text; the returned release has derived values filled in explicitly."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecInvalid([Diagnostic(filename, 0, 0, "", f"larger than the {MAX_SPEC_BYTES // 1024} KiB limit for a spec")])
    check_shape(text, filename)
    tree = _parse_yaml(text, filename)
    count_nodes(tree, filename)
    raw = _plain(tree)
    diagnostics: list[Diagnostic] = []
    release: ModelRelease | None = None
    try:
        release = ModelRelease.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            diagnostics.append(_diagnostic(filename, tree, raw, err))
    for loc, message in rules.check(raw):
        line, col = _position(tree, loc, at_key=False)
        diagnostics.append(Diagnostic(filename, line, col, _dotted(loc), message))
    if diagnostics:
        raise SpecInvalid(list(dict.fromkeys(diagnostics)))
    assert release is not None  # noqa: S101 - an invariant for the type checker, not a security check
    return rules.normalize(release)


# ── YAML ────────────────────────────────────────────────────────────────────────────────────────


def _parse_yaml(text: str, filename: str) -> CommentedMap:
    yaml = YAML(typ="rt")
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        opened = exc.context_mark
        if exc.context and opened and mark and opened.line != mark.line and "duplicate key" not in problem:
            problem += f" ({exc.context.strip()} opened at line {opened.line + 1}, column {opened.column + 1})"
        raise SpecInvalid([Diagnostic(filename, line, col, "", f"YAML syntax error: {problem}")]) from None
    docs = [d for d in docs if d is not None]
    if not docs:
        raise SpecInvalid([Diagnostic(filename, 0, 0, "", "empty file: expected a ModelRelease mapping")])
    if len(docs) > 1:
        raise SpecInvalid([Diagnostic(filename, 0, 0, "", f"expected one YAML document, found {len(docs)}")])
    if not isinstance(docs[0], CommentedMap):
        raise SpecInvalid([Diagnostic(filename, 1, 1, "", "expected a mapping (apiVersion, kind, metadata, spec)")])
    return docs[0]


def _plain(node: Any) -> Any:
    """ruamel's round-trip types → plain Python, so pydantic sees ordinary values."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node  # dates and other tagged scalars: pydantic reports the type


def _position(tree: Any, loc: tuple, at_key: bool) -> tuple[int, int]:
    """1-based line/column of ``loc`` in the YAML tree: the value, or the key when ``at_key``.

    Walks as deep as the file goes; a missing key points at its parent.
    """
    node, line, col = tree, tree.lc.line + 1, tree.lc.col + 1
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            kl, kc = node.lc.key(part)
            vl, vc = node.lc.value(part)
            line, col = (kl + 1, kc + 1) if (last and at_key) else (vl + 1, vc + 1)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            il, ic = node.lc.item(part)
            line, col = il + 1, ic + 1
            node = node[part]
        elif isinstance(node, CommentedMap) and isinstance(part, str) and node.get("type") == part:
            continue  # a discriminated-union tag that pydantic puts in the location
        else:
            break
    return line, col


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ── pydantic errors → messages ──────────────────────────────────────────────────────────────────


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return str(value)


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_CHOICES = re.compile(r"'([^']*)'|(-?\d+)")


def _diagnostic(filename: str, tree: CommentedMap, raw: dict, err: dict) -> Diagnostic:
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    loc = _strip_tags(raw, loc)
    at_key = kind == "extra_forbidden"
    if kind == "union_tag_invalid":
        loc = (*loc, "type")
    if kind == "missing":
        message = "required key is missing"
        line, col = _position(tree, loc[:-1], at_key=True)
    else:
        line, col = _position(tree, loc, at_key=at_key)
        message = _message(kind, ctx, value, loc, raw, err["msg"])
    return Diagnostic(filename, line, col, _dotted(loc), message)


#: Names people bring from LLaMA Factory, transformers or habit → what the spec calls them, as
#: paths relative to the mapping the unknown key is in; the first that exists there is suggested.
#: Consulted before the spelling match, which gets these wrong (``lr`` is nearest to ``lora``).
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate",),
    "learning_rate_peak": ("learning_rate",),
    "epoch": ("epochs",),
    "num_epochs": ("epochs",),
    "num_train_epochs": ("epochs",),
    "n_epochs": ("epochs",),
    "steps": ("max_steps",),
    "bs": ("batch_size",),
    "batch": ("batch_size",),
    "micro_batch_size": ("batch_size",),
    "train_batch_size": ("batch_size",),
    "per_device_train_batch_size": ("batch_size",),
    "per_device_eval_batch_size": ("eval_batch_size",),
    "grad_accum": ("gradient_accumulation",),
    "grad_accumulation": ("gradient_accumulation",),
    "accumulation_steps": ("gradient_accumulation",),
    "gradient_accumulation_steps": ("gradient_accumulation",),
    "r": ("rank", "lora.rank"),
    "lora_r": ("rank", "lora.rank"),
    "lora_rank": ("rank", "lora.rank"),
    "lora_alpha": ("alpha", "lora.alpha"),
    "lora_dropout": ("dropout", "lora.dropout"),
    "lora_target": ("targets", "lora.targets"),
    "target_modules": ("targets", "lora.targets"),
    "quantization_bit": ("bits", "quantization.bits"),
    "load_in_4bit": ("bits", "quantization.bits"),
    "load_in_8bit": ("bits", "quantization.bits"),
    "optim": ("optimizer",),
    "lr_scheduler": ("scheduler",),
    "lr_scheduler_type": ("scheduler",),
    "warmup": ("warmup_steps",),
    "wd": ("weight_decay",),
    "grad_clip": ("max_grad_norm",),
    "clip_grad_norm": ("max_grad_norm",),
    "max_length": ("cutoff_len",),
    "max_seq_length": ("cutoff_len",),
    "max_seq_len": ("cutoff_len",),
    "seq_len": ("cutoff_len",),
    "context_length": ("cutoff_len",),
    "dtype": ("precision",),
    "torch_dtype": ("precision",),
    "mixed_precision": ("precision",),
    "bf16": ("precision",),
    "fp16": ("precision",),
    "deepspeed": ("deepspeed_stage", "distributed.deepspeed_stage"),
    "zero_stage": ("deepspeed_stage", "distributed.deepspeed_stage"),
    "nnodes": ("nodes", "distributed.nodes"),
    "gpus": ("gpus_per_node", "distributed.gpus_per_node"),
    "num_gpus": ("gpus_per_node", "distributed.gpus_per_node"),
    "nproc_per_node": ("gpus_per_node", "distributed.gpus_per_node"),
    "model": ("base_model",),
    "model_name_or_path": ("name", "base_model.name"),
}


def _alias(key: Any, loc: tuple, raw: dict) -> str | None:
    """The spec's name for a key written in another tool's words (:data:`KEY_ALIASES`), if it
    exists in the mapping at ``loc``."""
    for path in KEY_ALIASES.get(str(key), ()):
        *parents, last = path.split(".")
        if last in _fields_at((*loc, *parents), raw):
            return path
    return None


def _message(kind: str, ctx: dict, value: Any, loc: tuple, raw: dict, default: str) -> str:
    if kind == "extra_forbidden":
        alias = _alias(loc[-1], loc[:-1], raw)
        if alias:
            return f"unknown key (did you mean {alias}?)"
        known = sorted(_fields_at(loc[:-1], raw))
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if guess:
            return f"unknown key (did you mean {guess[0]}?)"
        return f"unknown key (expected one of: {', '.join(known)})" if known else "unknown key"
    if kind in ("literal_error", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags") or ""
        choices = [a or b for a, b in _CHOICES.findall(str(expected))]
        got = value if kind == "literal_error" else ctx.get("tag")
        guess = difflib.get_close_matches(str(got), choices, n=1, cutoff=0.6)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        if len(choices) == 1:
            return f"must be {choices[0]} (got {_show(got)})"
        if len(choices) > 12:
            return f"unknown value {_show(got)}{' (' + hint[2:] + ')' if hint else ''}; `sre-llm schema` lists the choices"
        return f"must be one of {', '.join(choices)} (got {_show(got)}{hint})"
    if kind == "union_tag_not_found":
        return f"needs a {ctx.get('discriminator', 'type').strip(chr(39))} key"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {_num(limit)} (got {_show(value)})"
    types = {
        "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
        "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
        "bool_parsing": "true or false", "string_type": "a string", "model_type": "a mapping",
        "model_attributes_type": "a mapping", "dict_type": "a mapping", "list_type": "a list",
    }
    if kind in types:
        return f"must be {types[kind]} (got {_show(value)})"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"takes at most {ctx.get('max_length')} item(s)"
    if kind == "frozen_instance":
        return default
    return default[0].lower() + default[1:] if default else kind


def _strip_tags(raw: dict, loc: tuple) -> tuple:
    """Drop discriminated-union tags pydantic adds to locations (sources[0].prometheus.url)."""
    out: list = []
    node: Any = raw
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _fields_at(loc: tuple, raw: dict) -> set[str]:
    """Names a user may write in the mapping at ``loc`` (aliases where a field has one)."""
    model = model_at(loc, raw)
    if model is None:
        return set()
    return {f.alias or name for name, f in model.model_fields.items()}


def model_at(loc: tuple, raw: Any) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` of ``raw`` (None if not a model)."""
    tp: Any = ModelRelease
    node = raw
    for part in loc:
        tp = _pick(tp, node)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            tp = field.annotation
            node = node.get(part) if isinstance(node, dict) else None
        elif typing.get_origin(tp) is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            return None
    tp = _pick(tp, node)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _pick(tp: Any, node: Any) -> Any:
    """Unwrap Annotated / Optional, and choose the union member whose ``type`` tag matches."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin is Union:
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
            tag = node.get("type") if isinstance(node, dict) else None
            for member in members:
                m = _pick(member, node)
                if isinstance(m, type) and issubclass(m, BaseModel) and "type" in m.model_fields:
                    if typing.get_args(m.model_fields["type"].annotation) == (tag,):
                        return m
            return None
        else:
            return tp
