"""Render a validated spec into files (pure) and write them (one writer)."""
