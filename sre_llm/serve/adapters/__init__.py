"""Consumer adapters, registered here: the next consumer is one file and one line below."""

from __future__ import annotations

from sre_llm.serve.adapters import agent_sre, canonical
from sre_llm.serve.adapters.base import Adapter
from sre_llm.serve.decide import Alert

#: Tried in order; the first that recognises a prompt answers it.
ADAPTERS: tuple[Adapter, ...] = (agent_sre.ADAPTER, canonical.ADAPTER)


def match(prompt: str) -> tuple[Adapter, Alert] | None:
    """The adapter that understands ``prompt`` and the alert it read, or None."""
    for adapter in ADAPTERS:
        alert = adapter.recognise(prompt)
        if alert is not None:
            return adapter, alert
    return None


def names() -> list[str]:
    return [a.name for a in ADAPTERS]


__all__ = ["ADAPTERS", "Adapter", "match", "names"]
