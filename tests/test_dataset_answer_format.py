"""The dataset builder writes answers in the spec's answer format; both formats are the same calls."""

from __future__ import annotations

import json
from pathlib import Path

from sre_llm.answer import alert_from_input, expand_references, parse_output
from sre_llm.dataset.build import build
from sre_llm.spec.load import load_spec


def _build(tmp: Path, repo_root: Path, fmt: str | None) -> list[dict]:
    spec = (repo_root / "specs/tiny-cpu.yaml").read_text().replace("count: 2000", "count: 400").replace("min_examples: 500", "min_examples: 50")
    if fmt:
        spec = spec.replace("  dataset:\n", f"  dataset:\n    answer_format: {fmt}\n", 1)
    tmp.mkdir()
    (tmp / "spec.yaml").write_text(spec)
    built = build(load_spec(tmp / "spec.yaml").release, root=tmp)
    return [json.loads(line) for s in ("train", "validation", "test") for line in (built.path / f"{s}.jsonl").read_text().splitlines()]


def test_labelref_is_the_default_and_expands_to_the_literal_build(tmp_path: Path, repo_root: Path):
    refs = _build(tmp_path / "ref", repo_root, None)
    literal = _build(tmp_path / "lit", repo_root, "literal-v1")
    assert [r["input"] for r in refs] == [r["input"] for r in literal]
    assert not any("{{" in r["output"] for r in literal)
    with_refs = [r for r in refs if "{{ $labels." in r["output"]]
    assert len(with_refs) > len(refs) // 2
    # The scale target a label carries is named, not copied from the prose.
    assert any('"replicas": "{{ $labels.expected }}"' in r["output"] for r in refs)
    assert any('"replicas": ' in r["output"] and '"replicas": "' not in r["output"] for r in refs)
    for ref, lit in zip(refs, literal):
        labels, _ = alert_from_input(ref["input"])
        fn, params = parse_output(ref["output"])
        assert (fn, expand_references(params, labels, fn)) == parse_output(lit["output"])
