"""docs/threat-model.md stays honest: every test it names exists, every element of the data flow
has a row for each STRIDE letter, and no row leaves its "Shown by" column without a test or the
word residual. A renamed or deleted test, or a threat added without its evidence, fails here.

Only the source is read (ast): nothing is imported or run, so this takes well under a second.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "threat-model.md"

# The flow issue 16 names, in its order, after the specs/CI that drive it.
ELEMENTS = ("Specs", "Collectors", "Dataset", "Training", "Registry", "Artifact store", "Gateway", "Agent",
            "LambdaFunctions")
STRIDE = "STRIDE"
REF = re.compile(r"\btests/[\w/]+\.py(?:::\w+(?:\[[^\]\s]*\])?)+")
RESIDUAL = re.compile(r"\bresidual\b", re.IGNORECASE)


def references(text: str) -> list[str]:
    """Every ``tests/…py::name`` (or ``::Class::name``, a ``[param]`` id allowed) in ``text``."""
    return REF.findall(text)


@cache
def _definitions(path: Path) -> dict[str, set[str] | None]:
    """Top-level functions (value None) and classes (value: their method names) of a test file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: dict[str, set[str] | None] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = None
        elif isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return out


def reference_problem(ref: str, root: Path = ROOT) -> str | None:
    """Why ``ref`` does not name a collectable test, or None when it does."""
    file, *names = ref.split("::")
    names = [re.sub(r"\[.*\]$", "", n) for n in names]
    path = root / file
    if not path.is_file():
        return f"{ref}: no such file {file}"
    defs = _definitions(path)
    if len(names) == 1:
        name = names[0]
        if name not in defs or defs[name] is not None:
            return f"{ref}: {file} defines no test function {name}"
    elif len(names) == 2:
        cls, name = names
        if defs.get(cls) is None or name not in defs[cls]:
            return f"{ref}: {file} has no class {cls} with a method {name}"
    else:
        return f"{ref}: expected FILE::TEST or FILE::CLASS::TEST"
    if not names[-1].startswith("test"):
        return f"{ref}: {names[-1]} is not a test (pytest collects test* only)"
    return None


def stride_tables(text: str) -> dict[str, list[list[str]]]:
    """Under "## STRIDE per element": each ``### heading`` → its table rows whose first cell is one
    STRIDE letter, as lists of stripped cells."""
    _, found, rest = text.partition("\n## STRIDE per element")
    if not found:
        return {}
    rest = rest.split("\n## ", 1)[0]
    tables: dict[str, list[list[str]]] = {}
    heading = None
    for line in rest.splitlines():
        if line.startswith("### "):
            heading = re.sub(r"^\d+\.\s*", "", line[4:].strip())
            tables[heading] = []
        elif heading is not None and line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # `\|` is a pipe in a cell
            if cells and len(cells[0]) == 1 and cells[0] in STRIDE:
                tables[heading].append(cells)
    return tables


def table_problems(tables: dict[str, list[list[str]]], elements: tuple[str, ...] = ELEMENTS) -> list[str]:
    """Elements missing or out of order, STRIDE letters missing, rows of the wrong shape, and rows
    whose evidence column names neither a test nor a residual risk."""
    problems = []
    headings = list(tables)
    for i, element in enumerate(elements):
        if i >= len(headings) or not headings[i].startswith(element):
            problems.append(f"element {i} should be {element!r} (headings: {headings})")
    for heading, rows in tables.items():
        missing = [letter for letter in STRIDE if letter not in {r[0] for r in rows}]
        if missing:
            problems.append(f"{heading}: no row for {', '.join(missing)}")
        for row in rows:
            if len(row) != 4:
                problems.append(f"{heading}: row {row[:2]} has {len(row)} cells, not 4 (letter, threat, control, shown by)")
                continue
            if not references(row[3]) and not RESIDUAL.search(row[3]):
                problems.append(f"{heading}: {row[0]} {row[1]!r}: names no test and says no residual risk")
    return problems


def test_every_named_test_exists() -> None:
    refs = references(DOC.read_text(encoding="utf-8"))
    assert len(set(refs)) >= 80, f"only {len(set(refs))} test references found: is the pattern still right?"
    problems = [p for ref in sorted(set(refs)) if (p := reference_problem(ref))]
    assert not problems, "docs/threat-model.md names tests that do not exist:\n" + "\n".join(problems)


def test_every_element_has_every_stride_letter_and_no_silent_gap() -> None:
    tables = stride_tables(DOC.read_text(encoding="utf-8"))
    assert len(tables) == len(ELEMENTS), list(tables)
    problems = table_problems(tables)
    assert not problems, "\n".join(problems)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_a():\n    pass\n\n\ndef helper():\n    pass\n\n\nclass TestK:\n    def test_m(self):\n        pass\n")
    ok = ("tests/test_x.py::test_a", "tests/test_x.py::test_a[case-1]", "tests/test_x.py::TestK::test_m")
    assert [reference_problem(r, tmp_path) for r in ok] == [None, None, None]
    assert reference_problem("tests/test_x.py::test_gone", tmp_path) == "tests/test_x.py::test_gone: tests/test_x.py defines no test function test_gone"
    assert reference_problem("tests/test_y.py::test_a", tmp_path) == "tests/test_y.py::test_a: no such file tests/test_y.py"
    assert "not a test" in reference_problem("tests/test_x.py::helper", tmp_path)
    assert "no class TestK with a method test_n" in reference_problem("tests/test_x.py::TestK::test_n", tmp_path)

    doc = """# x

## STRIDE per element

### 1. Collectors

| | Threat | Control | Shown by |
|---|---|---|---|
| S | a | b | `tests/test_x.py::test_a` |
| T | a | b | residual: nothing answers it |
| R | a | b | a test will come |
| I | a `x\\|y` | b | `tests/test_x.py::test_a` |
| D | a | b | `tests/test_x.py::test_a` |

## Known residual risks
| E | outside the section | b | c |
"""
    tables = stride_tables(doc)
    assert list(tables) == ["Collectors"] and [r[0] for r in tables["Collectors"]] == list("STRID")
    assert tables["Collectors"][3][1] == "a `x\\|y`"  # an escaped pipe stays in its cell, as GitHub renders it
    assert table_problems(tables, ("Collectors", "Dataset")) == [
        "element 1 should be 'Dataset' (headings: ['Collectors'])",
        "Collectors: no row for E",
        "Collectors: R 'a': names no test and says no residual risk",
    ]
    assert references("see `tests/test_x.py::test_a` and tests/test_x.py alone") == ["tests/test_x.py::test_a"]


def test_the_threat_model_is_linked_from_the_readme_and_the_deploy_guide() -> None:
    for doc, link in ((ROOT / "README.md", "docs/threat-model.md"), (ROOT / "docs" / "deploy.md", "threat-model.md")):
        assert f"]({link})" in doc.read_text(encoding="utf-8"), f"{doc.name} does not link {link}"
