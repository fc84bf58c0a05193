"""OpenAI's API: ``/v1/chat/completions`` (plain, and ``tools`` → ``tool_calls``) and ``/v1/models``."""
