"""Bad specs: each case asserts the exact diagnostics, all at once, with file:line:col."""

from __future__ import annotations

import pytest

from sre_llm.errors import SpecInvalid
from sre_llm.spec.load import parse_spec

# A minimal valid spec; most cases append lines under `spec:` (their line numbers start at 10).
BASE = """apiVersion: sre-llm/v1
kind: ModelRelease
metadata:
  name: demo
  version: 1.0.0
spec:
  base_model:
    path: models/tiny
    family: qwen2
"""

CASES = {
    'seed_raw_recipe': (
        BASE + '  training:\n    method: lora\n    badam: {mode: layer}\n    optimizer: adamw_bits_8bit\n',
        [
            'specs/x.yaml:12:12: spec.training.badam: BAdam is for method full; LLaMA Factory refuses LoRA with BAdam (got method lora)',
            "specs/x.yaml:13:16: spec.training.optimizer: unknown value 'adamw_bits_8bit' (did you mean adamw_bnb_8bit?); `sre-llm schema` lists the choices",
        ],
    ),
    'lora_rank_negative': (
        BASE + '  training:\n    lora:\n      rank: -8\n',
        [
            'specs/x.yaml:12:13: spec.training.lora.rank: must be > 0 (got -8)',
        ],
    ),
    'unknown_key_suggestion': (
        BASE + '  training:\n    learning_rte: 2.0e-4\n',
        [
            'specs/x.yaml:11:5: spec.training.learning_rte: unknown key (did you mean learning_rate?)',
        ],
    ),
    'unknown_key_alias_by_meaning': (
        # Words from LLaMA Factory / transformers: suggested by meaning, not by spelling (lr ≠ lora).
        BASE + '  training:\n    lr: 1.0e-4\n    num_train_epochs: 3\n    bs: 4\n    grad_accum: 2\n',
        [
            'specs/x.yaml:11:5: spec.training.lr: unknown key (did you mean learning_rate?)',
            'specs/x.yaml:12:5: spec.training.num_train_epochs: unknown key (did you mean epochs?)',
            'specs/x.yaml:13:5: spec.training.bs: unknown key (did you mean batch_size?)',
            'specs/x.yaml:14:5: spec.training.grad_accum: unknown key (did you mean gradient_accumulation?)',
        ],
    ),
    'unknown_key_alias_nested': (
        BASE + '  training:\n    lora_rank: 16\n    lora:\n      r: 8\n',
        [
            'specs/x.yaml:11:5: spec.training.lora_rank: unknown key (did you mean lora.rank?)',
            'specs/x.yaml:13:7: spec.training.lora.r: unknown key (did you mean rank?)',
        ],
    ),
    'unknown_key_no_suggestion': (
        BASE + '  training:\n    zzz: 1\n',
        [
            'specs/x.yaml:11:5: spec.training.zzz: unknown key (expected one of: badam, batch_size, cluster, cutoff_len, device, distributed, epochs, eval_batch_size, eval_steps, flash_attn, gradient_accumulation, gradient_checkpointing, learning_rate, logging_steps, lora, max_grad_norm, max_steps, method, optimizer, precision, preprocessing_workers, quantization, save_steps, scheduler, seed, warmup_ratio, warmup_steps, weight_decay)',
        ],
    ),
    'unknown_top_level': (
        BASE + '  trainng: {}\n',
        [
            'specs/x.yaml:10:3: spec.trainng: unknown key (did you mean training?)',
        ],
    ),
    'qlora_without_quantization': (
        BASE + '  training:\n    method: qlora\n',
        [
            'specs/x.yaml:11:5: spec.training.quantization: method qlora needs quantization with bits: 4 or 8',
        ],
    ),
    'qlora_3_bits': (
        BASE + '  training:\n    method: qlora\n    quantization: {bits: 3}\n',
        [
            'specs/x.yaml:12:26: spec.training.quantization.bits: method qlora needs 4- or 8-bit quantization (got 3)',
        ],
    ),
    'quantization_with_lora': (
        BASE + '  training:\n    method: lora\n    quantization: {bits: 4}\n',
        [
            'specs/x.yaml:12:19: spec.training.quantization: quantizes the base for method qlora only (got method lora)',
        ],
    ),
    'lora_with_full': (
        BASE + '  training:\n    method: full\n    lora: {rank: 8}\n',
        [
            'specs/x.yaml:12:11: spec.training.lora: LoRA settings have no effect with method full; remove them or use lora/qlora',
        ],
    ),
    'badam_qlora': (
        BASE + '  training:\n    method: qlora\n    quantization: {bits: 4}\n    badam: {}\n',
        [
            'specs/x.yaml:13:12: spec.training.badam: BAdam is for method full; LLaMA Factory refuses LoRA with BAdam (got method qlora)',
        ],
    ),
    'method_typo': (
        BASE + '  training:\n    method: lorra\n',
        [
            "specs/x.yaml:11:13: spec.training.method: must be one of lora, qlora, full (got 'lorra'; did you mean lora?)",
        ],
    ),
    'split_sum': (
        BASE + '  dataset:\n    split: {train: 0.7, validation: 0.1, test: 0.1}\n',
        [
            'specs/x.yaml:11:12: spec.dataset.split: fractions must sum to 1 (got 0.9 = train 0.7 + validation 0.1 + test 0.1)',
        ],
    ),
    'split_no_test': (
        BASE + '  dataset:\n    split: {train: 0.9, validation: 0.1, test: 0}\n',
        [
            'specs/x.yaml:11:48: spec.dataset.split.test: must be > 0: the gates are measured on the test split',
        ],
    ),
    'min_gt_max': (
        BASE + '  dataset:\n    min_examples: 5000\n    max_examples: 1000\n',
        [
            'specs/x.yaml:11:19: spec.dataset.min_examples: must be <= max_examples (got 5000 > 1000)',
        ],
    ),
    'family_template_mismatch': (
        BASE + '    template: llama3\n',
        [
            "specs/x.yaml:10:15: spec.base_model.template: family qwen2 uses LLaMA Factory template qwen (got 'llama3')",
        ],
    ),
    'gate_out_of_range': (
        BASE + '  evaluation:\n    gates:\n      remediation_accuracy: 1.5\n',
        [
            'specs/x.yaml:12:29: spec.evaluation.gates.remediation_accuracy: must be <= 1 (got 1.5)',
        ],
    ),
    'fpr_negative': (
        BASE + '  evaluation:\n    gates:\n      false_positive_rate: -0.1\n',
        [
            'specs/x.yaml:12:28: spec.evaluation.gates.false_positive_rate: must be >= 0 (got -0.1)',
        ],
    ),
    'latency_zero': (
        BASE + '  evaluation:\n    gates:\n      p95_latency_ms: 0\n',
        [
            'specs/x.yaml:12:23: spec.evaluation.gates.p95_latency_ms: must be > 0 (got 0)',
        ],
    ),
    'secret_literal': (
        BASE + '  dataset:\n    sources:\n      - type: linear\n        token: lin_api_SECRET123\n',
        [
            'specs/x.yaml:13:16: spec.dataset.sources[0].token: must be a secret reference, env:NAME or file:PATH (a literal value is refused, and not shown, so that secrets never live in specs)',
        ],
    ),
    'source_type_typo': (
        BASE + '  dataset:\n    sources:\n      - type: promethus\n        url: http://p:9090\n',
        [
            "specs/x.yaml:12:15: spec.dataset.sources[0].type: must be one of prometheus, alertmanager, runbook, linear, git, labels, synthetic (got 'promethus'; did you mean prometheus?)",
        ],
    ),
    'source_missing_url': (
        BASE + '  dataset:\n    sources:\n      - type: prometheus\n',
        [
            'specs/x.yaml:12:9: spec.dataset.sources[0].url: required key is missing',
        ],
    ),
    'source_no_type': (
        BASE + '  dataset:\n    sources:\n      - url: http://p:9090\n',
        [
            'specs/x.yaml:12:9: spec.dataset.sources[0]: needs a type key',
        ],
    ),
    'bad_duration': (
        BASE + '  dataset:\n    sources:\n      - type: prometheus\n        url: http://p:9090\n        lookback: 3 months\n',
        [
            "specs/x.yaml:14:19: spec.dataset.sources[0].lookback: must be a duration: a whole number and s, m, h or d, such as 30m (got '3 months')",
        ],
    ),
    'warmup_both': (
        BASE + '  training:\n    warmup_steps: 10\n    warmup_ratio: 0.1\n',
        [
            'specs/x.yaml:12:19: spec.training.warmup_ratio: give warmup_steps or warmup_ratio, not both',
        ],
    ),
    'fp16_cpu': (
        BASE + '  training:\n    device: cpu\n    precision: fp16\n',
        [
            'specs/x.yaml:12:16: spec.training.precision: fp16 needs a GPU; use bf16 or fp32 with device: cpu',
        ],
    ),
    'cpu_multi_gpu': (
        BASE + '  training:\n    device: cpu\n    distributed: {gpus_per_node: 4}\n',
        [
            'specs/x.yaml:12:18: spec.training.distributed: several GPUs or nodes need device: cuda',
        ],
    ),
    'deepspeed_stage_1': (
        BASE + '  training:\n    distributed: {deepspeed_stage: 1}\n',
        [
            'specs/x.yaml:11:36: spec.training.distributed.deepspeed_stage: must be one of 0, 2, 3 (got 1)',
        ],
    ),
    'badam_multi_gpu_no_zero3': (
        BASE + '  training:\n    method: full\n    badam: {mode: layer}\n    distributed: {gpus_per_node: 4, deepspeed_stage: 2}\n',
        [
            'specs/x.yaml:13:54: spec.training.distributed.deepspeed_stage: layer-wise BAdam on several GPUs needs DeepSpeed ZeRO stage 3',
        ],
    ),
    'rollout_not_increasing': (
        BASE + '  deployment:\n    rollout:\n      steps: [50, 10, 100]\n',
        [
            'specs/x.yaml:12:14: spec.deployment.rollout.steps: must increase step by step (got [50, 10, 100])',
        ],
    ),
    'rollout_over_100': (
        BASE + '  deployment:\n    rollout:\n      steps: [10, 150]\n',
        [
            'specs/x.yaml:12:14: spec.deployment.rollout.steps: must end at 100 so the rollout completes (got [10, 150])',
            'specs/x.yaml:12:19: spec.deployment.rollout.steps[1]: must be <= 100 (got 150)',
        ],
    ),
    'scaling_min_gt_max': (
        BASE + '  deployment:\n    scaling: {min_replicas: 6, max_replicas: 2}\n',
        [
            'specs/x.yaml:11:29: spec.deployment.scaling.min_replicas: must be <= max_replicas (got 6 > 2)',
        ],
    ),
    'ab_percent_100': (
        BASE + '  deployment:\n    rollout:\n      ab_test: {percent: 100}\n',
        [
            'specs/x.yaml:12:26: spec.deployment.rollout.ab_test.percent: must be < 100 (got 100)',
        ],
    ),
    'signing_key_missing': (
        BASE + '  signing:\n    method: key\n',
        [
            'specs/x.yaml:11:5: spec.signing: method key needs private_key (env:NAME or file:PATH)',
        ],
    ),
    'signing_sigstore_with_key': (
        BASE + '  signing:\n    method: sigstore\n    private_key: env:KEY\n',
        [
            'specs/x.yaml:12:18: spec.signing.private_key: method sigstore signs keyless; remove private_key',
        ],
    ),
    'learning_rate_string': (
        BASE + '  training:\n    learning_rate: fast\n',
        [
            "specs/x.yaml:11:20: spec.training.learning_rate: must be a number (got 'fast')",
        ],
    ),
    'batch_size_float': (
        BASE + '  training:\n    batch_size: 2.5\n',
        [
            'specs/x.yaml:11:17: spec.training.batch_size: must be a whole number (got 2.5)',
        ],
    ),
    'optimizer_typo': (
        BASE + '  training:\n    optimizer: adamw_bits_8bit\n',
        [
            "specs/x.yaml:11:16: spec.training.optimizer: unknown value 'adamw_bits_8bit' (did you mean adamw_bnb_8bit?); `sre-llm schema` lists the choices",
        ],
    ),
    'scheduler_typo': (
        BASE + '  training:\n    scheduler: cosin\n',
        [
            "specs/x.yaml:11:16: spec.training.scheduler: must be one of linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup, inverse_sqrt, reduce_lr_on_plateau, cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay, greedy (got 'cosin'; did you mean cosine?)",
        ],
    ),
    'test_examples_unreachable': (
        BASE + '  dataset:\n    max_examples: 500\n  evaluation:\n    min_test_examples: 100\n',
        [
            'specs/x.yaml:11:5: spec.dataset.min_examples: must be <= max_examples (got 1000 > 500)',
            'specs/x.yaml:13:24: spec.evaluation.min_test_examples: can never be met: max_examples 500 × split.test 0.1 = 50 test examples at most',
        ],
    ),
    'bad_regex': (
        BASE + "  dataset:\n    redaction:\n      extra_patterns: ['([a-z']\n",
        [
            'specs/x.yaml:12:24: spec.dataset.redaction.extra_patterns[0]: is not a valid regular expression: unterminated character set at position 1',
        ],
    ),
    'encryption_bad_recipient': (
        BASE + '  dataset:\n    encryption:\n      recipients: [not-a-key]\n      identity: env:AGE_ID\n',
        [
            "specs/x.yaml:12:20: spec.dataset.encryption.recipients[0]: must be an age public key (age1…) or an SSH public key (got 'not-a-key')",
        ],
    ),
    'namespace_uppercase': (
        BASE + '  deployment:\n    namespace: Production\n',
        [
            "specs/x.yaml:11:16: spec.deployment.namespace: must be a DNS-1123 name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (got 'Production')",
        ],
    ),
    'bad_name_and_version': (
        'apiVersion: sre-llm/v1\nkind: ModelRelease\nmetadata:\n  name: Demo_Release\n  version: 1.0\nspec:\n  base_model:\n    path: models/tiny\n    family: qwen2\n',
        [
            "specs/x.yaml:4:9: metadata.name: must be a DNS-1123 name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (got 'Demo_Release')",
            'specs/x.yaml:5:12: metadata.version: must be a semantic version such as 1.0.0, quoted (got 1.0)',
        ],
    ),
    'wrong_api_version': (
        'apiVersion: sre-llm/v2\nkind: ModelRelease\nmetadata:\n  name: demo\n  version: 1.0.0\nspec:\n  base_model:\n    path: models/tiny\n    family: qwen2\n',
        [
            "specs/x.yaml:1:13: apiVersion: must be sre-llm/v1 (got 'sre-llm/v2')",
        ],
    ),
    'wrong_kind': (
        'apiVersion: sre-llm/v1\nkind: Release\nmetadata:\n  name: demo\n  version: 1.0.0\nspec:\n  base_model:\n    path: models/tiny\n    family: qwen2\n',
        [
            "specs/x.yaml:2:7: kind: must be ModelRelease (got 'Release')",
        ],
    ),
    'unknown_family': (
        'apiVersion: sre-llm/v1\nkind: ModelRelease\nmetadata:\n  name: demo\n  version: 1.0.0\nspec:\n  base_model:\n    path: models/tiny\n    family: qwen9\n',
        [
            "specs/x.yaml:9:13: spec.base_model.family: must be one of qwen2, qwen3, llama2, llama3, yi, mistral, gemma, gemma2, gemma3, phi3, deepseek, chatglm3 (got 'qwen9'; did you mean qwen3?)",
        ],
    ),
    'both_name_and_path': (
        'apiVersion: sre-llm/v1\nkind: ModelRelease\nmetadata:\n  name: demo\n  version: 1.0.0\nspec:\n  base_model:\n    path: models/tiny\n    name: Qwen/Qwen2-7B\n    family: qwen2\n',
        [
            'specs/x.yaml:8:5: spec.base_model: give exactly one of name (a hub id) or path (a local directory)',
        ],
    ),
    'neither_name_nor_path': (
        'apiVersion: sre-llm/v1\nkind: ModelRelease\nmetadata:\n  name: demo\n  version: 1.0.0\nspec:\n  base_model:\n    family: qwen2\n',
        [
            'specs/x.yaml:8:5: spec.base_model: give exactly one of name (a hub id) or path (a local directory)',
        ],
    ),
    'branch_revision': (
        'apiVersion: sre-llm/v1\nkind: ModelRelease\nmetadata:\n  name: demo\n  version: 1.0.0\nspec:\n  base_model:\n    name: Qwen/Qwen2-7B\n    revision: main\n    family: qwen2\n',
        [
            "specs/x.yaml:9:15: spec.base_model.revision: 'main' is a branch and moves; pin a commit hash or tag",
        ],
    ),
    'missing_metadata': (
        'apiVersion: sre-llm/v1\nkind: ModelRelease\nspec:\n  base_model:\n    path: m\n    family: qwen2\n',
        [
            'specs/x.yaml:1:1: metadata: required key is missing',
        ],
    ),
    'yaml_syntax': (
        BASE + '  training:\n    method: [lora\n',
        [
            "specs/x.yaml:12:1: YAML syntax error: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence opened at line 11, column 13)",
        ],
    ),
    'duplicate_key': (
        BASE + '  training:\n    epochs: 3\n    epochs: 4\n',
        [
            'specs/x.yaml:12:5: YAML syntax error: found duplicate key "epochs" with value "4" (original value: "3")',
        ],
    ),
    'not_a_mapping': (
        '- just\n- a list\n',
        [
            'specs/x.yaml:1:1: expected a mapping (apiVersion, kind, metadata, spec)',
        ],
    ),
    'empty': (
        '',
        [
            'specs/x.yaml: empty file: expected a ModelRelease mapping',
        ],
    ),
    'tab_indent': (
        BASE + '  training:\n\tmethod: lora\n',
        [
            "specs/x.yaml:11:1: YAML syntax error: found character '\\t' that cannot start any token",
        ],
    ),
}


def test_there_are_at_least_25_bad_spec_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_spec_reports_exact_diagnostics(name: str) -> None:
    text, expected = CASES[name]
    with pytest.raises(SpecInvalid) as err:
        parse_spec(text, "specs/x.yaml")
    assert err.value.lines() == expected


def test_base_is_valid() -> None:
    release = parse_spec(BASE, "specs/x.yaml")
    assert release.metadata.name == "demo"
    assert release.spec.base_model.template == "qwen"  # derived from the family, explicitly
    assert release.spec.training.lora.alpha == 16  # 2 x rank, explicitly


def test_key_aliases_point_at_real_fields() -> None:
    """Every alias target is a field path in some mapping of the spec: no suggestion names a ghost."""
    from sre_llm.spec.load import KEY_ALIASES
    from sre_llm.spec.model import ModelRelease

    models, todo = set(), [ModelRelease]
    while todo:
        m = todo.pop()
        if m not in models:
            models.add(m)
            todo += [sub for f in m.model_fields.values() if (sub := _model_in(f.annotation))]
    for alias, targets in KEY_ALIASES.items():
        for target in targets:
            assert any(_resolves(m, target.split(".")) for m in models), f"{alias} → {target}"


def _model_in(tp):
    """The pydantic model inside an annotation (Optional[X], list[X], Annotated[X, …]), if any."""
    import typing

    from pydantic import BaseModel

    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return next((m for arg in typing.get_args(tp) if (m := _model_in(arg))), None)


def _resolves(model, parts) -> bool:
    for part in parts[:-1]:
        field = model.model_fields.get(part)
        model = field and _model_in(field.annotation)
        if model is None:
            return False
    return parts[-1] in model.model_fields
