"""Dataset pipeline: sources → raw records → label → redact → dedupe → split → files (see docs/dataset.md)."""
