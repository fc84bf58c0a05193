"""What a consumer adapter is: it recognises its consumer's prompt and speaks its reply format."""

from __future__ import annotations

from typing import Any, Protocol

from sre_llm.serve.decide import Alert, Answer


class Adapter(Protocol):
    """One consumer. ``recognise`` must be exact: a prompt it is unsure of is not its own (it goes
    to the pass-through upstream or is refused with 422), never a guess."""

    name: str
    #: The OpenAI tool this consumer declares for its decision, if any (answered as ``tool_calls``).
    tool: str | None

    def recognise(self, prompt: str) -> Alert | None:
        """The alert in ``prompt``, or None when the prompt is not this consumer's."""

    def reply(self, answer: Answer) -> str:
        """The answer as the consumer parses model text."""

    def tool_arguments(self, answer: Answer) -> dict[str, Any] | None:
        """The arguments of a call of :attr:`tool`, or None when the answer is no action."""
