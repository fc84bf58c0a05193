"""The answer contract: what the model is asked, how it answers, and what an answer may do.

One low, pure module that the dataset builder, the evaluator and the gateway all import, so the
three can never drift apart:

- :mod:`.format` — the canonical prompt (:data:`INSTRUCTION`, :func:`render_input`) and the
  canonical answer (:func:`render_output` / :func:`parse_output`);
- :mod:`.references` — label references (``{{ $labels.pod }}``), the answer formats
  (:data:`LITERAL`, :data:`LABELREF`) and their expansion with an alert's labels;
- :mod:`.grounding` — the answers allowed for one alert, compiled to a decoding automaton
  (evaluator) and a regex (vLLM structured outputs, the gateway);
- :mod:`.guard` — the only way a model's text becomes an action.

Nothing here imports torch, a server or the network.
"""

from sre_llm.answer.format import (
    ANNOTATION_ORDER,
    INSTRUCTION,
    LABEL_ORDER,
    ParseError,
    canonical_json,
    example,
    parse_output,
    render_input,
    render_output,
    render_parts,
)
from sre_llm.answer.grounding import Automaton, Grounding, allowed_answers, vllm_regex
from sre_llm.answer.guard import (
    DEFAULT_POLICY,
    Decision,
    Policy,
    alert_from_input,
    guard,
)
from sre_llm.answer.references import (
    ANSWER_FORMATS,
    DEFAULT_ANSWER_FORMAT,
    LABELREF,
    LITERAL,
    UnknownReference,
    check_format,
    expand_references,
    reference,
    referenced_label,
    to_references,
)

__all__ = [
    "ANNOTATION_ORDER",
    "ANSWER_FORMATS",
    "DEFAULT_ANSWER_FORMAT",
    "DEFAULT_POLICY",
    "INSTRUCTION",
    "LABELREF",
    "LABEL_ORDER",
    "LITERAL",
    "Automaton",
    "Decision",
    "Grounding",
    "ParseError",
    "Policy",
    "UnknownReference",
    "alert_from_input",
    "allowed_answers",
    "canonical_json",
    "check_format",
    "example",
    "expand_references",
    "guard",
    "parse_output",
    "reference",
    "referenced_label",
    "render_input",
    "render_output",
    "render_parts",
    "to_references",
    "vllm_regex",
]
