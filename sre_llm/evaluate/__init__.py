"""Evaluation: scoring (pure), gates, the output guard, the harness, the adversarial suite, reports."""
