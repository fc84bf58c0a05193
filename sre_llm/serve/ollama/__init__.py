"""Ollama's API: ``/api/generate``, ``/api/chat``, ``/api/tags``, ``/api/version``."""
