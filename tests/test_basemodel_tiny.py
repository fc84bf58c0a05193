"""The tiny base model builder: deterministic bytes, the template's special tokens, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.train_env import sremain

pytestmark = pytest.mark.llamafactory


@pytest.mark.slow
def test_same_inputs_give_same_file_digests(tmp_path: Path) -> None:
    from sre_llm.execute.digest import tree_files

    digests = []
    for n in (1, 2):
        proc = sremain(["base-model", "tiny", "--family", "qwen2", "--out", f"m{n}", "--pretrain-steps", "4", "--json"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["files"] == tree_files(tmp_path / f"m{n}")
        digests.append(report["files"])
    assert digests[0] == digests[1]
    assert sorted(digests[0]) == ["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
                                  "sre-llm-base.json", "tokenizer.json", "tokenizer_config.json"]


@pytest.mark.parametrize(
    ("family", "specials", "bos", "eos", "pad"),
    [
        ("qwen2", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", "<|endoftext|>"),
        ("llama3", ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                    "<|eom_id|>", "<|finetune_right_pad_id|>"], "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>"),
    ],
)
def test_tokenizer_carries_the_templates_special_tokens(tmp_path: Path, family, specials, bos, eos, pad) -> None:
    from transformers import AutoConfig, AutoTokenizer

    proc = sremain(["base-model", "tiny", "--family", family, "--out", "m", "--pretrain-steps", "0"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"built {family} tiny model (")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    cfg = AutoConfig.from_pretrained(tmp_path / "m")
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (bos, eos, pad)
    for s in specials:  # each special is one token, never split by the BPE
        assert len(tok.encode(s, add_special_tokens=False)) == 1, s
    assert cfg.model_type == family.replace("llama3", "llama")
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (128, 4, 4, 512)
    assert cfg.tie_word_embeddings is True and cfg.eos_token_id == tok.eos_token_id and cfg.pad_token_id == tok.pad_token_id
    assert 1900 <= len(tok) <= 2048
    text = 'pod: web-7d4f9c6b8-x2x9q\nParameters: {"name": "web-7d4f9c6b8-x2x9q"}'
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|im_start|>assistant\n" if family == "qwen2" else "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_refuses_unknown_family_and_existing_model(tmp_path: Path) -> None:
    proc = sremain(["base-model", "tiny", "--family", "gpt2", "--out", "m"], cwd=tmp_path)
    assert proc.returncode == 2 and "'gpt2' is not one of 'llama3', 'qwen2'" in proc.stderr
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    proc = sremain(["base-model", "tiny", "--out", "m", "--pretrain-steps", "0"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "m: already exists and is not empty; use --force to replace it"
    assert (tmp_path / "m" / "config.json").read_text() == "{}"  # nothing the user had is touched
