"""The JSON Schema and the README's spec reference come from the models and are committed current."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from sre_llm import api, docs

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_is_current() -> None:
    assert (ROOT / "schema" / "model-release.schema.json").read_text() == api.schema_text()


@pytest.mark.parametrize("spec", sorted(ROOT.glob("specs/*.yaml")), ids=lambda p: p.stem)
def test_specs_point_editors_at_the_schema_and_pass_it(spec: Path) -> None:
    text = spec.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/model-release.schema.json\n")
    data = json.loads(json.dumps(YAML(typ="safe").load(text)))
    jsonschema.Draft202012Validator(api.schema()).validate(data)


def test_schema_rejects_unknown_keys_too() -> None:
    data = {"apiVersion": "sre-llm/v1", "kind": "ModelRelease", "metadata": {"name": "a", "version": "1.0.0"},
            "spec": {"base_model": {"path": "m", "family": "qwen2"}, "training": {"learning_rte": 1}}}
    errors = list(jsonschema.Draft202012Validator(api.schema()).iter_errors(data))
    assert any("learning_rte" in e.message for e in errors)


def test_readme_spec_reference_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(docs.BEGIN) + len(docs.BEGIN)
    assert readme[start:readme.index(docs.END)] == "\n" + docs.reference()


def test_every_field_is_documented() -> None:
    from pydantic import BaseModel

    from sre_llm.spec import model as m

    missing = [f"{cls.__name__}.{name}" for cls in vars(m).values()
               if isinstance(cls, type) and issubclass(cls, BaseModel) and cls is not BaseModel
               for name, field in cls.model_fields.items() if not field.description]
    assert missing == []
