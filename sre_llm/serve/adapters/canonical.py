"""The project's own prompt (the alpaca instruction and the alert, as training wrote it), answered
in the project's own two-line format with the guarded, expanded values. What ``sre-llm eval``
and any client that already speaks the canonical prompt use."""

from __future__ import annotations

from typing import Any

from sre_llm.answer import INSTRUCTION, alert_from_input, render_output
from sre_llm.serve.decide import Alert, Answer

_PREFIX = INSTRUCTION + "\n"


class Canonical:
    name = "canonical"
    tool = None

    def recognise(self, prompt: str) -> Alert | None:
        if not prompt.startswith(_PREFIX):
            return None
        labels, annotations = alert_from_input(prompt[len(_PREFIX):])
        return Alert(labels, annotations) if labels else None

    def reply(self, answer: Answer) -> str:
        return render_output(answer.decision.function, answer.decision.parameters)

    def tool_arguments(self, answer: Answer) -> dict[str, Any] | None:
        return None


ADAPTER = Canonical()
