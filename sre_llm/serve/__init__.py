"""The serving gateway: one process in front of vLLM, in the cluster and in ``sre-llm serve``.

Consumers are adapters at the edge; the model sees one canonical prompt::

    consumer request ─► surface (ollama/, openai/) ─► adapter (adapters/) ─► Decider
        Decider: canonical prompt + grounding regex ─► vLLM (greedy) ─► guard ─► Answer
    Answer ─► adapter's reply ─► surface's response

Layout (after vLLM's own server: one folder per API surface with ``api_router.py`` (routes),
``protocol.py`` (pydantic request/response models) and ``serving.py`` (the work)):

- :mod:`.config` — :class:`GatewayConfig` (every limit, with its default and why);
- :mod:`.app` — the Starlette app: surfaces, health, metrics, limits;
- :mod:`.server` — hypercorn (header/body read timeouts), shared with the webhook receiver;
- :mod:`.decide` — the canonical decision (prompt, constraint, vLLM, guard);
- :mod:`.upstream` — httpx to vLLM; :mod:`.passthrough` — prompts no adapter understands;
- :mod:`.adapters` — one file per consumer, registered in ``adapters/__init__.py``.

Nothing here imports torch, transformers or LLaMA Factory: the gateway runs in a light image
(``pip install sre-llm[serve]``) and talks HTTP to vLLM beside it.
"""
