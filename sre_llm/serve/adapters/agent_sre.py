"""agent-sre (homelab commit a90f3c7): its remediation prompt in, its JSON reply out.

agent-sre's ``create_remediation_prompt`` (``ai_remediation.py``) writes the alert as::

    You are an SRE agent analyzing a Prometheus alert to select the appropriate remediation action.

    Alert Details:
    - Alert Name: <labels.alertname or "unknown">
    - Labels: <json.dumps(labels, indent=2)>
    - Annotations: <json.dumps(annotations, indent=2)>

    Available Lambda Functions:
    ... (the seven functions, three examples)
    Return your response as a JSON object with keys: lambda_function, parameters, reasoning.

and ``select_remediation_with_ai`` may append an ``IMPORTANT: Respond with ONLY a valid JSON
object`` block. The labels and annotations are JSON, so they are read back exactly (an annotation
cannot fake a line of the prompt: ``json.dumps`` escapes its newlines and quotes), and the alert
name must equal the labels' ``alertname`` as agent-sre writes it.

The reply is what agent-sre accepts: ``{"lambda_function": <one of the seven>, "parameters":
{...}, "reasoning": "..."}``; no action is ``"lambda_function": null`` with empty parameters.
"""

from __future__ import annotations

import json
from typing import Any

from sre_llm.serve.decide import Alert, Answer, strings

HEAD = ("You are an SRE agent analyzing a Prometheus alert to select the appropriate remediation action.\n\n"
        "Alert Details:\n- Alert Name: ")
LABELS = "\n- Labels: "
ANNOTATIONS = "\n- Annotations: "
AFTER = "\n\nAvailable Lambda Functions:\n"
ASK = "Return your response as a JSON object with keys: lambda_function, parameters, reasoning."
TOOL = "select_remediation_action"  # LAMBDA_FUNCTIONS_SCHEMA's function name

_DECODER = json.JSONDecoder()


def _object_at(text: str, pos: int) -> tuple[dict | None, int]:
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError:
        return None, pos
    return (value, end) if isinstance(value, dict) else (None, pos)


def reasoning(answer: Answer) -> str:
    d = answer.decision
    alert = answer.alert.name
    if d.acts:
        return f"{alert}: {d.function} chosen by the sre-llm model; parameters are the alert's own values (guard passed)."
    if d.reason is None:
        return f"{alert}: the sre-llm model chose no remediation."
    proposed = f" {d.proposed}" if d.proposed and d.proposed != "none" else ""
    return f"{alert}: no remediation; the guard refused the model's answer{proposed}: {d.reason}"


class AgentSre:
    name = "agent-sre"
    tool = TOOL

    def recognise(self, prompt: str) -> Alert | None:
        if not prompt.startswith(HEAD) or ASK not in prompt:
            return None
        start = len(HEAD)
        pos = prompt.find(LABELS, start)
        while pos != -1:  # an alert name could itself contain the separator: try each one
            labels, end = _object_at(prompt, pos + len(LABELS))
            if labels is not None and str(labels.get("alertname", "unknown")) == prompt[start:pos] \
                    and prompt.startswith(ANNOTATIONS, end):
                annotations, end = _object_at(prompt, end + len(ANNOTATIONS))
                if annotations is not None and prompt.startswith(AFTER, end):
                    return Alert(strings(labels), strings(annotations))
            pos = prompt.find(LABELS, pos + 1)
        return None

    def action(self, answer: Answer) -> dict[str, Any]:
        d = answer.decision
        if not d.acts:
            return {"lambda_function": None, "parameters": {}, "reasoning": reasoning(answer)}
        return {"lambda_function": d.function, "parameters": dict(d.parameters), "reasoning": reasoning(answer)}

    def reply(self, answer: Answer) -> str:
        return json.dumps(self.action(answer), ensure_ascii=False)

    def tool_arguments(self, answer: Answer) -> dict[str, Any] | None:
        return self.action(answer) if answer.decision.acts else None


ADAPTER = AgentSre()
