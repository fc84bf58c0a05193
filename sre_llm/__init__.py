"""sre-llm: fine-tune a local LLM that chooses alert remediations, the GitOps way."""

__version__ = "0.1.0"
