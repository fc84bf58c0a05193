"""Moved to :mod:`sre_llm.answer.guard` (the answer contract's own package); kept so that old
imports keep working. New code imports from :mod:`sre_llm.answer`."""

from sre_llm.answer.guard import *
from sre_llm.answer.guard import (  # noqa: F401
    DEFAULT_POLICY,
    MUTATING,
    Decision,
    Policy,
    alert_from_input,
    guard,
)
