"""Collectors: one module per source, each turning what it reads into raw records (sre_llm.dataset.records)."""
