"""Everything the CLI does, callable from Python. Each function returns data or raises an
:class:`~sre_llm.errors.SreLlmError`; none prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from sre_llm.errors import BadInput, Diagnostic, SpecInvalid
from sre_llm.render import writer
from sre_llm.render.render import RenderedFile, Templates, render_release
from sre_llm.spec.load import LoadedSpec, load_spec


def validate(paths: Sequence[str | Path]) -> list[LoadedSpec]:
    """Load every spec; raise one :class:`SpecInvalid` carrying the problems of all of them."""
    if not paths:
        raise BadInput("no spec given: name one or more model-release YAML files")
    loaded: list[LoadedSpec] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            loaded.append(load_spec(path))
        except SpecInvalid as exc:
            problems.extend(exc.diagnostics)
        except BadInput as exc:
            problems.append(Diagnostic(str(path), 0, 0, "", str(exc).removeprefix(f"{path}: ")))
    _check_unique_releases(loaded, problems)
    if problems:
        raise SpecInvalid(problems)
    return loaded


def _check_unique_releases(loaded: Iterable[LoadedSpec], problems: list[Diagnostic]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for spec in loaded:
        key = (spec.release.metadata.name, spec.release.metadata.version)
        if key in seen:
            problems.append(
                Diagnostic(spec.path, 0, 0, "metadata", f"release {key[0]} {key[1]} is also defined by {seen[key]}")
            )
        seen.setdefault(key, spec.path)


def render_files(
    paths: Sequence[str | Path], templates: str | Path | None = None, root: str = "rendered"
) -> list[RenderedFile]:
    """Validate and render every spec (pure: nothing is written)."""
    specs = validate(paths)
    tpl = Templates(templates)
    if templates is not None and not Path(templates).is_dir():
        raise BadInput(f"{templates}: templates folder not found")
    return [f for spec in specs for f in render_release(spec, tpl, root)]


@dataclass(frozen=True)
class RenderResult:
    changes: list[writer.Change]
    written: bool

    @property
    def drift(self) -> list[writer.Change]:
        return [c for c in self.changes if c.drift]


def render(
    paths: Sequence[str | Path],
    check: bool = False,
    templates: str | Path | None = None,
    root: str = "rendered",
    base: str | Path = ".",
) -> RenderResult:
    """Render specs to ``<base>/<root>/``; with ``check`` compare only and write nothing."""
    files = render_files(paths, templates, root)
    changes = writer.plan(files, base)
    if not check:
        writer.apply(changes, base)
    return RenderResult(changes, written=not check)


def schema() -> dict:
    """The JSON Schema of ``model-release.yaml`` (from the pydantic models)."""
    from sre_llm.spec.model import ModelRelease

    doc = ModelRelease.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["description"] = "sre-llm model release spec (apiVersion sre-llm/v1, kind ModelRelease)."
    return doc


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
