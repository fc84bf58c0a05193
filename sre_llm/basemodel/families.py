"""What each supported architecture needs: special tokens for its LLaMA Factory template, the chat
template for generic chat code, and how one turn is laid out (used by the pre-training)."""

from __future__ import annotations

from dataclasses import dataclass

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    name: str
    template: str  # LLaMA Factory template name
    specials: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str
    chat_template: str
    # How LLaMA Factory's template lays out one single-turn sample (with its default system prompt),
    # so the pre-training sees exactly the byte layout fine-tuning will use.
    prefix: str
    user: str  # with {content}
    assistant: str  # with {content}


FAMILIES: dict[str, Family] = {
    "qwen2": Family(
        name="qwen2",
        template="qwen",
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=QWEN_CHAT_TEMPLATE,
        prefix="<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
        user="<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n",
        assistant="{content}<|im_end|>\n",
    ),
    "llama3": Family(
        name="llama3",
        template="llama3",
        specials=(
            "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|eot_id|>", "<|eom_id|>", "<|finetune_right_pad_id|>",
        ),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        pad="<|finetune_right_pad_id|>",
        chat_template=LLAMA3_CHAT_TEMPLATE,
        prefix="<|begin_of_text|>",
        user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        assistant="{content}<|eot_id|>",
    ),
}
