"""Moved to :mod:`sre_llm.answer.format` (the answer contract's own package); kept so that old
imports keep working. New code imports from :mod:`sre_llm.answer`."""

from sre_llm.answer.format import *
from sre_llm.answer.format import (  # noqa: F401  (names without __all__ that callers use)
    ANNOTATION_ORDER,
    ANSWER_ANNOTATIONS,
    HIDDEN_LABELS,
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
