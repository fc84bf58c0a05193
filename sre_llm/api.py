"""Everything the CLI does, callable from Python. Each function returns data or raises an
:class:`~sre_llm.errors.SreLlmError`; none prints."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    files = [(spec.path, f) for spec in specs for f in render_release(spec, tpl, root)]
    check_collisions([(owner, f.path, f.text) for owner, f in files])
    return [f for _, f in files]


def _objects(text: str) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of each Kubernetes object in a rendered YAML file.

    Rendered files come from one dumper (block style, ``metadata:`` at the top level with its
    keys two spaces in), so a line scan finds them; a YAML parse cost ~10 ms a file."""
    found = []
    for doc in text.split("\n---\n"):
        fields: dict[str, str] = {}
        in_meta = False
        for line in doc.splitlines():
            if not line or line[0] == "#":
                continue
            if line[0] != " ":
                in_meta = line.rstrip() == "metadata:"
                key, _, value = line.partition(": ")
                if key in ("apiVersion", "kind"):
                    fields[key] = value.strip().strip("'\"")
            elif in_meta and line.startswith("  ") and line[2] != " ":
                key, _, value = line[2:].partition(": ")
                if key in ("name", "namespace") and key not in fields:
                    fields[key] = value.strip().strip("'\"")
        if fields.get("kind") and fields.get("name"):
            group = fields.get("apiVersion", "").rpartition("/")[0]
            kind = f"{fields['kind']}.{group}" if group else fields["kind"]
            found.append((kind, fields.get("namespace", ""), fields["name"]))
    return found


def check_collisions(files: Iterable[tuple[str, str, str]]) -> None:
    """Refuse two rendered files that define the same object (kind, namespace, name): two Flux
    Kustomizations applying one object fight over it, and pruning one deletes the other's.
    ``files`` are (owner: the spec or file that renders it, path, text)."""
    seen: dict[tuple[str, str, str], tuple[str, str]] = {}
    problems = []
    for owner, path, text in files:
        if not path.endswith(".yaml") or "/k8s/" not in path:
            continue
        for key in _objects(text):
            if key in seen and seen[key][0] != owner:
                kind, ns, name = key
                problems.append(f"{kind.split('.')[0]} {ns + '/' if ns else ''}{name} is rendered by both "
                                f"{seen[key][0]} ({seen[key][1]}) and {owner} ({path})")
            seen.setdefault(key, (owner, path))
    if problems:
        raise BadInput("rendered objects collide (give each release its own names, or let one of them own the "
                       "object):\n" + "\n".join(problems))


@dataclass(frozen=True)
class RenderResult:
    changes: list[writer.Change]
    written: bool
    warnings: tuple[str, ...] = ()  # what an operator should know before applying (serving.yaml headers)

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
    _check_against_disk(files, Path(base) / root, root)
    changes = writer.plan(files, base)
    if not check:
        writer.apply(changes, base)
    from sre_llm.render.k8s import WARNING_PREFIX

    warnings = tuple(f"{f.path}: {line[len(WARNING_PREFIX):]}" for f in files if f.path.endswith("/k8s/serving.yaml")
                     for line in f.text.splitlines() if line.startswith(WARNING_PREFIX))
    return RenderResult(changes, written=not check, warnings=warnings)


def _check_against_disk(files: Sequence[RenderedFile], rendered: Path, root: str) -> None:
    """Collisions with what other releases already rendered under ``rendered/``."""
    mine = {f.path.split("/")[len(Path(root).parts)] for f in files}
    on_disk = []
    for path in sorted(rendered.glob("*/k8s/*.yaml")):
        release = path.parent.parent.name
        if release not in mine:
            on_disk.append((f"{root}/{release}", f"{root}/{release}/k8s/{path.name}", path.read_text()))
    if on_disk:
        check_collisions([*on_disk, *((f.path.split("/k8s/")[0], f.path, f.text) for f in files)])


def schema() -> dict:
    """The JSON Schema of ``model-release.yaml`` (from the pydantic models)."""
    from sre_llm.spec.model import ModelRelease

    doc = ModelRelease.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["description"] = "sre-llm model release spec (apiVersion sre-llm/v1, kind ModelRelease)."
    return doc


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
