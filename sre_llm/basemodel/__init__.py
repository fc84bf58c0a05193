"""Build small base models on this machine (no hub): the embedded default for CPU demos and tests."""
