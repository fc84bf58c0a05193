"""Generation through LLaMA Factory's own inference code, batched on the same loaded model.

:class:`Generator` loads base (+ adapter) with LLaMA Factory's ``ChatModel`` (huggingface
backend), so the tokenizer fixes, template, adapter loading and dtype are exactly those of
training. ``ChatModel.chat`` answers one conversation per call; for throughput the harness
encodes prompts with the same ``Template.encode_oneturn`` and calls ``generate`` on the same
loaded model with left padding, greedy, computing the prompt prefix every example shares
(system prompt and instruction) once. ``chat`` stays available: the harness uses it for the
single-request latency probe and to check the two paths agree.

Imports of torch and LLaMA Factory happen in the constructor, never at module import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput

MIN_PREFIX = 8
#: Candidates the grounded loop tries per row and step before walking the full ranking.
TOP_K = 8


def common_prefix(seqs: Sequence[Sequence[int]]) -> list[int]:
    """The longest prefix of every sequence, leaving each at least one token of its own."""
    if not seqs:
        return []
    limit = min(len(s) for s in seqs) - 1
    first = seqs[0]
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return list(first[:n])


@dataclass(frozen=True)
class ModelRef:
    """What to load: a base model and, for LoRA runs, an adapter on it."""

    base: str
    adapter: str | None
    template: str
    finetuning_type: str = "lora"
    quantization_bit: int | None = None

    @property
    def kind(self) -> str:
        return "adapter" if self.adapter else "full"


def _is_model_dir(p: Path) -> bool:
    return (p / "config.json").is_file() and (any(p.glob("*.safetensors")) or any(p.glob("pytorch_model*.bin")))


def resolve_model(path: str | Path, config: dict[str, Any]) -> ModelRef:
    """A run folder, its ``output/``, an adapter folder or a full model folder → :class:`ModelRef`.

    An adapter (``adapter_config.json``) goes on the eval config's base model; a full model
    folder (full fine-tuning, or a merged export) is loaded on its own.
    """
    p = Path(path)
    candidates = [p, p / "output"]
    m = config["model"]
    for c in candidates:
        if (c / "adapter_config.json").is_file():
            return ModelRef(str(m["base"]), str(c), m["template"], "lora", m.get("quantization_bit"))
        if _is_model_dir(c):
            return ModelRef(str(c), None, m["template"], "full", None)
    raise BadInput(f"--model {path}: no adapter (adapter_config.json) or model (config.json + weights) found there or in {p / 'output'}")


def base_ref(config: dict[str, Any]) -> ModelRef:
    """The untrained base model of the eval config (the baseline)."""
    m = config["model"]
    return ModelRef(str(m["base"]), None, m["template"], "full" if not m.get("quantization_bit") else "lora", m.get("quantization_bit"))


class Generator:
    """A loaded model that answers alpaca ``(instruction, input)`` prompts greedily."""

    def __init__(self, ref: ModelRef, max_new_tokens: int, cutoff_len: int = 2048, threads: int | None = None):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # LLaMA Factory logs INFO lines to stdout, which must stay clean for `--json`.
        os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")
        if threads:
            import torch

            # CPU only: on a busy machine a small model runs several times faster on one thread
            # than with OpenMP threads fighting other processes for the cores (measured: 0.22 s
            # vs 3-7 s for one 64-token answer with the load at 6 on 2 cores).
            torch.set_num_threads(threads)
        if not Path(ref.base).is_dir():
            raise BadInput(f"model {ref.base}: not a folder on this machine (nothing is downloaded); build or fetch it first")
        from llamafactory.chat import ChatModel

        args: dict[str, Any] = {
            "model_name_or_path": ref.base,
            "template": ref.template,
            "finetuning_type": ref.finetuning_type,
            "infer_backend": "huggingface",
            "do_sample": False,
            "max_new_tokens": max_new_tokens,
            "trust_remote_code": False,
        }
        if ref.adapter:
            args["adapter_name_or_path"] = ref.adapter
        if ref.quantization_bit:
            args["quantization_bit"] = ref.quantization_bit
        self.ref = ref
        self.max_new_tokens = max_new_tokens
        self.cutoff_len = cutoff_len
        self.chat_model = ChatModel(args)
        engine = self.chat_model.engine
        self.model, self.tokenizer, self.template = engine.model, engine.tokenizer, engine.template
        # encode() tokenizes a whole prompt to measure it, then cuts it to cutoff_len; the
        # adversarial suite's log-flood alert is longer than model_max_length on purpose. The
        # tokenizer warns "Token indices sequence length is longer than the specified maximum
        # sequence length ... will result in indexing errors" about that uncut measurement,
        # which no model ever sees. Mark that one warning as already given, on this tokenizer only.
        warned = getattr(self.tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True
        self.stop_ids = self.template.get_stop_token_ids(self.tokenizer)
        self._texts: dict[int, str] = {}
        self._by_first: dict[str, list[int]] | None = None

    # -- prompts -------------------------------------------------------------------------------
    @staticmethod
    def user_content(instruction: str, query: str) -> str:
        """How LLaMA Factory's alpaca converter joins instruction and input ("prompt\\nquery")."""
        return "\n".join(x for x in (instruction, query) if x)

    def encode(self, instruction: str, query: str) -> tuple[list[int], bool]:
        """Prompt token ids through the real template; inputs longer than ``cutoff_len`` are
        cut at the end of the alert text (the template's tail stays), flagged ``True``."""
        content = self.user_content(instruction, query)
        truncated = False
        for _ in range(8):
            ids, _ = self.template.encode_oneturn(self.tokenizer, [{"role": "user", "content": content}, {"role": "assistant", "content": ""}])
            if len(ids) <= self.cutoff_len:
                return ids, truncated
            content = content[: max(1, int(len(content) * self.cutoff_len / len(ids) * 0.9))]
            truncated = True
        return ids[-self.cutoff_len:], True

    # -- generation ----------------------------------------------------------------------------
    def prefix_cache(self, prefix: Sequence[int]):
        """The KV cache of a prompt prefix that every prompt shares (the instruction): computed
        once per run instead of once per example."""
        import torch

        with torch.inference_mode():
            return self.model(input_ids=torch.tensor([list(prefix)], device=self.model.device), use_cache=True,
                              logits_to_keep=1).past_key_values

    def token_text(self, tok: int) -> str:
        """The text one token adds to an answer (cached; the grounded loop asks for a few per step)."""
        text = self._texts.get(tok)
        if text is None:
            text = self.tokenizer.convert_tokens_to_string([self.tokenizer.convert_ids_to_tokens(tok)])
            self._texts[tok] = text
        return text

    def _first_char_index(self) -> dict[str, list[int]]:
        """Token ids by the first character of their text, over the whole vocabulary (built once,
        on the first step where no top candidate fits)."""
        if self._by_first is None:
            self._by_first = {}
            for tok in range(len(self.tokenizer)):
                text = self.token_text(tok)
                if text and "\ufffd" not in text:
                    self._by_first.setdefault(text[0], []).append(tok)
        return self._by_first

    def _grounded_choice(self, logits, rows: Sequence[int], constraints: Sequence[Any], states: list[Any],
                         done: set[int]) -> list[int]:
        """Per batch row, the most likely token whose text keeps the row's answer allowed.

        Only the top :data:`TOP_K` candidates are tried, most likely first (the model usually
        agrees with its grounding, so the first fits), never a mask over the whole vocabulary.
        When none of them fits, the candidates are the tokens whose text starts with a character
        the answer may continue with (an index built once), tried by their logit. A row whose
        answer is complete gets a stop token.
        A token whose text is a partial UTF-8 sequence is never chosen (its text is not known
        alone); the allowed answers are Kubernetes names, ASCII in practice.
        """
        import torch

        stops = self.stop_ids
        top = logits.topk(min(TOP_K, logits.shape[-1]), dim=-1).indices.tolist()
        chosen = []
        for j, i in enumerate(rows):
            auto, state = constraints[i], states[i]
            if i in done or auto.finished(state):
                chosen.append(stops[0])
                continue
            pick = None
            for ranking in (top[j], None):
                if ranking is None:  # the model's favourites all leave the allowed answers
                    ids = auto.memo.get(state)
                    if ids is None:
                        index = self._first_char_index()
                        cands = [tok for ch in sorted(auto.next_chars(state)) for tok in index.get(ch, ())]
                        if auto.accepting(state):
                            cands += list(stops)
                        ids = auto.memo[state] = torch.tensor(cands, dtype=torch.long, device=logits.device)
                    if not len(ids):
                        break
                    ranking = ids[torch.argsort(logits[j, ids], descending=True)].tolist()
                for tok in ranking:
                    if tok in stops:
                        if auto.accepting(state):
                            pick = (tok, state)
                            break
                        continue
                    text = self.token_text(tok)
                    if not text or "\ufffd" in text:
                        continue
                    nxt = auto.step(state, text)
                    if nxt:
                        pick = (tok, nxt)
                        break
                if pick is not None:
                    break
            tok, states[i] = pick if pick is not None else (stops[0], state)
            chosen.append(tok)
        return chosen

    def generate(self, prompts: Sequence[list[int]], prefix: Sequence[int] = (), cache=None,
                 constraints: Sequence[Any] | None = None) -> list[str]:
        """Greedy answers for a batch of encoded prompts, decoded together on the loaded model.

        Each row is ``prefix + padding + rest``: with no prefix that is plain left padding.
        With a shared ``prefix`` and its ``cache``, only the rest is computed. Positions come from
        the attention mask, so a padded row sees the same positions as it would alone, and answers
        match ``ChatModel.chat`` exactly (the harness and the benchmark check it).

        With ``constraints`` (one :class:`~sre_llm.answer.grounding.Automaton` per prompt) the
        answers are grounded: each step takes the most likely token that keeps the answer among
        the alert's allowed answers (:meth:`_grounded_choice`), and a row stops when its answer
        is complete.

        A plain greedy loop rather than ``model.generate``: a row leaves the batch (and its KV
        cache) as soon as it says a stop token, so a short ``none`` answer stops costing compute
        while a long pod name is still being written (measured: 15 % faster on the demo's test
        split, same answers).
        """
        import copy

        import torch

        n = len(prefix)
        rests = [list(p[n:]) for p in prompts]
        width = max(len(r) for r in rests)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        dev = self.model.device
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rests], device=dev)
        mask = torch.tensor([[1] * n + [0] * (width - len(r)) + [1] * len(r) for r in rests], device=dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, n:]
        if cache is not None:
            kv = copy.deepcopy(cache)
            kv.batch_repeat_interleave(len(prompts))
        else:
            ids = ids if n == 0 else torch.cat([torch.tensor([list(prefix)] * len(prompts), device=dev), ids], -1)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            kv = None
        stops = set(self.stop_ids)
        answers: list[list[int]] = [[] for _ in prompts]
        alive = list(range(len(prompts)))  # batch row → prompt index
        done: set[int] = set()  # prompts that said a stop token
        states = [c.start for c in constraints] if constraints is not None else []
        with torch.inference_mode():
            # Only the last position's logits are needed: the prompt's other positions would cost a
            # vocabulary-sized projection each.
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=kv, use_cache=True,
                             logits_to_keep=1)
            for step in range(self.max_new_tokens):
                if constraints is None:
                    chosen = out.logits[:, -1, :].argmax(-1).tolist()
                else:
                    chosen = self._grounded_choice(out.logits[:, -1, :], alive, constraints, states, done)
                live = []
                for j, tok in enumerate(chosen):
                    i = alive[j]
                    if i in done:
                        continue
                    if tok in stops:
                        done.add(i)
                        continue
                    answers[i].append(tok)
                    live.append(j)
                if not live or step == self.max_new_tokens - 1:
                    break
                kv = out.past_key_values
                if len(live) < len(alive) and hasattr(kv, "batch_select_indices"):
                    sel = torch.tensor(live, device=dev)
                    kv.batch_select_indices(sel)
                    mask = mask[sel]
                    chosen = [chosen[j] for j in live]
                    alive = [alive[j] for j in live]
                # (a cache that cannot shrink keeps finished rows, fed padding, until the batch ends)
                step_ids = torch.tensor([[pad if i in done else tok] for i, tok in zip(alive, chosen)], device=dev)
                mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=mask.dtype, device=dev)], -1)
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                                 past_key_values=kv, use_cache=True)
        return self.tokenizer.batch_decode(answers, skip_special_tokens=True, clean_up_tokenization_spaces=True)

    def chat(self, instruction: str, query: str) -> str:
        """One answer through ``ChatModel.chat`` itself (LLaMA Factory's single-request path)."""
        content = self.user_content(instruction, query)
        ids, truncated = self.encode(instruction, query)
        if truncated:  # the engine does not truncate; keep the same cut as the batched path
            return self.generate([ids])[0]
        return self.chat_model.chat([{"role": "user", "content": content}])[0].response_text

    def run(self, rows: Sequence[dict[str, str]], batch_size: int, prefix_cache: bool = True,
            constraints: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Answer every row (``instruction``, ``input``) in batches of similar length; with
        ``constraints`` (one automaton per row, see :meth:`generate`) the answers are grounded.

        Sorting by prompt length keeps padding (wasted compute) small, and the prompt prefix all
        rows share is computed once (``prefix_cache``); results come back in the input order
        with the wall time and size of the batch each answer came from.
        """
        encoded = [self.encode(r.get("instruction", ""), r.get("input", "")) for r in rows]
        order = sorted(range(len(rows)), key=lambda i: len(encoded[i][0]))
        results: list[dict[str, Any]] = [{} for _ in rows]
        prefix = common_prefix([ids for ids, _ in encoded]) if prefix_cache else []
        # The instruction is ~60 % of a prompt here; below a few tokens caching is not worth it.
        cache = self.prefix_cache(prefix) if len(prefix) >= MIN_PREFIX else None
        if cache is None:
            prefix = []
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            t0 = time.perf_counter()
            texts = self.generate([encoded[i][0] for i in idx], prefix, cache,
                                  [constraints[i] for i in idx] if constraints is not None else None)
            ms = (time.perf_counter() - t0) * 1000
            for i, text in zip(idx, texts):
                results[i] = {"output": text, "batch_ms": ms, "batch_size": len(idx), "truncated": encoded[i][1],
                              "prompt_tokens": len(encoded[i][0])}
        return results

    def tokens(self, text: str) -> int:
        """Length of ``text`` in tokens (no special tokens added)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def probe_latency(self, rows: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
        """One request at a time through ``ChatModel.chat``: the latency a caller sees."""
        out = []
        for r in rows:
            t0 = time.perf_counter()
            text = self.chat(r.get("instruction", ""), r.get("input", ""))
            out.append({"output": text, "latency_ms": (time.perf_counter() - t0) * 1000})
        return out
