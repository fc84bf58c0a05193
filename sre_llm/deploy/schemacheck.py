"""What JSON schemas miss in rendered manifests: unknown fields, and traffic that does not add up.

Draft-4 validation of a CRD's openAPIV3Schema accepts unknown keys (the API server would prune
them silently: the seed's ``spec.llm`` vanished that way), so :func:`unknown_fields` walks the
schema's ``properties`` and reports every key it does not declare. Pure: the caller supplies the
schema (tests use copies of the real CRDs; the product never reads them at run time).
"""

from __future__ import annotations

from typing import Any

_OPEN = ("x-kubernetes-preserve-unknown-fields", "additionalProperties")


def unknown_fields(doc: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Dotted paths of keys in ``doc`` that ``schema`` does not declare (where it declares any)."""
    found: list[str] = []
    if isinstance(doc, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        open_ = any(schema.get(k) not in (None, False) for k in _OPEN)
        for key, value in doc.items():
            here = f"{path}.{key}" if path else str(key)
            if key in props:
                found += unknown_fields(value, props[key], here)
            elif not open_:
                found.append(here)
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(doc):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def traffic_problems(service: dict[str, Any]) -> list[str]:
    """A Knative Service's ``spec.traffic``: percents 0..100 summing to 100, tags and revisions unique."""
    traffic = (service.get("spec") or {}).get("traffic") or []
    problems = []
    if not traffic:
        return ["spec.traffic is empty: the split must be explicit"]
    percents = [t.get("percent") for t in traffic]
    if any(not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 100 for p in percents):
        problems.append(f"spec.traffic: every percent must be a whole number from 0 to 100 (got {percents})")
    elif sum(percents) != 100:
        problems.append(f"spec.traffic: percentages sum to {sum(percents)}, not 100")
    for key in ("tag", "revisionName"):
        values = [t.get(key) for t in traffic if t.get(key) is not None]
        if len(values) != len(set(values)):
            problems.append(f"spec.traffic: duplicate {key} ({', '.join(map(str, values))})")
    if any(t.get("latestRevision") for t in traffic):
        problems.append("spec.traffic: latestRevision would move traffic whenever the template changes; pin revisions")
    return problems
