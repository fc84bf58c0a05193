"""Run LLaMA Factory for a rendered release: run directories, records, progress, export."""
