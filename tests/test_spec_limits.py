"""Hostile spec files: each refused with exit 2 naming the limit, in well under a second of work,
without the memory or recursion blow-up the naive loader had (MemoryError / RecursionError, exit 3)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sre_llm.errors import BadInput, SpecInvalid
from sre_llm.spec.limits import MAX_DEPTH, MAX_SPEC_BYTES
from sre_llm.spec.load import load_spec
from sre_llm.spec.regexcheck import catastrophic

ROOT = Path(__file__).resolve().parent.parent
HEAD = "apiVersion: sre-llm/v1\nkind: ModelRelease\nmetadata: {name: x, version: 1.0.0}\n"


def _bomb() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghi":  # 9**9 = 387 million values once expanded
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return text


CASES = {
    "alias-bomb": (_bomb(), "expands to more than 100,000 values through YAML aliases"),
    "deep-flow": ("a: " + "[" * 5000 + "]" * 5000 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
    "deep-block": ("".join(" " * i + f"k{i}:\n" for i in range(200)), f"nested deeper than {MAX_DEPTH} levels"),
    "too-big": (HEAD + "# " + "x" * MAX_SPEC_BYTES + "\n", "larger than the 1024 KiB limit"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_spec_files_exit_2_quickly(name: str, tmp_path: Path) -> None:
    text, message = CASES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises((SpecInvalid, BadInput)) as exc:
        load_spec(path)
    assert time.perf_counter() - start < 5  # generous for a loaded CI machine; ~0.1 s measured
    assert message in str(exc.value)
    assert exc.value.exit_code == 2


def _cap_memory() -> None:
    # 1 GiB of address space for the child: the CLI needs ~0.3 GiB; an expanding alias bomb or a
    # file read whole would hit the cap and die with MemoryError (exit 3), failing the test.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_hostile_specs_through_the_cli_with_bounded_memory(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(_bomb())
    for target in ("bomb.yaml", "/dev/zero"):
        proc = subprocess.run([sys.executable, "-m", "sre_llm", "validate", "--json", target], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, env={**os.environ}, preexec_fn=_cap_memory)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        error = json.loads(proc.stdout)["error"]
        assert error["code"] in ("spec_invalid", "bad_input")


def test_dev_zero_is_not_read(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a regular file"):
        load_spec("/dev/zero")


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a*b?)*", r"(\w+\s?)+$", r"(a+a)+", r"(x+x+)+y", r"(.*a){20}"])
def test_catastrophic_regexes_are_found(pattern: str) -> None:
    assert catastrophic(pattern)


@pytest.mark.parametrize("pattern", [
    r"\bAKIA[0-9A-Z]{16}\b", r"[\w.+-]+@[\w-]+(\.[\w-]+)+", r"(?:[a-z]+\.)+com", r"(ab)+", r"x{1,3}y+",
    r"(\w+,)+", r"(a++)+", r"(?>a+)+", r"((ab)*c)*", r"(?i)password\s*[:=]\s*\S+",
])
def test_ordinary_regexes_pass(pattern: str) -> None:
    assert catastrophic(pattern) is None


def test_catastrophic_regex_in_a_spec_is_refused_with_its_place(tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text(HEAD + "spec:\n  base_model: {name: Qwen/Qwen2-7B, family: qwen2}\n"
                    "  dataset:\n    redaction:\n      extra_patterns: ['(a+)+$']\n")
    with pytest.raises(SpecInvalid) as exc:
        load_spec(spec)
    (line,) = exc.value.lines()
    assert line.startswith(f"{spec}:8:24: spec.dataset.redaction.extra_patterns[0]: can backtrack catastrophically")


@pytest.mark.parametrize("labels, message", [
    ({"bad key!": "x"}, "label key 'bad key!' is not a Kubernetes label key"),
    ({"example.com/team": "x" * 64}, "label 'example.com/team': value 'xxxx"),
    ({"Example_Com/team": "sre"}, "label key 'Example_Com/team' is not a Kubernetes label key"),
    ({"team": "-sre"}, "label 'team': value '-sre' is not a Kubernetes label value"),
])
def test_kubernetes_labels_are_checked_at_validate(labels: dict, message: str, tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text(HEAD.replace("metadata: {name: x, version: 1.0.0}\n", "metadata:\n  name: x\n  version: 1.0.0\n")
                    + "  labels: " + json.dumps(labels) + "\nspec:\n  base_model: {name: Qwen/Qwen2-7B, family: qwen2}\n")
    with pytest.raises(SpecInvalid, match="metadata.labels") as exc:
        load_spec(spec)
    assert message in str(exc.value)


def test_good_labels_pass(tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text(HEAD.replace("metadata: {name: x, version: 1.0.0}\n", "metadata:\n  name: x\n  version: 1.0.0\n")
                    + '  labels: {"team": "sre", "example.com/tier": "gold", "empty": ""}\n'
                    + "spec:\n  base_model: {name: Qwen/Qwen2-7B, family: qwen2}\n")
    assert load_spec(spec).release.metadata.labels["example.com/tier"] == "gold"
