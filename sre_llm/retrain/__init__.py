"""Continuous learning: ``sre-llm retrain`` (new data → challenger → paired test → promotion
branch or a recorded refusal) and the loop's own health metrics."""
