"""The ``sre-llm`` command line: parse, call one library function, print, return an exit code.

Exit codes, the same condition giving the same code in every command: 0 ok · 1 a check failed
(drift, gate, signature, rollback) · 2 bad input or usage, or this machine cannot run what was
asked (a missing optional extra included) · 3 internal error (a short line here, the traceback in
a log file) · 130 interrupted. Under ``--json`` every failure is one object on stdout:
``{"ok": false, "error": {"code", "message", "path"?}}``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import click

from sre_llm import __version__
from sre_llm.clikit import JSON_OPTION, json_requested, ok
from sre_llm.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, CheckFailed, SreLlmError, missing_extra


class LazyGroup(click.Group):
    """A group whose commands live in other modules, imported only when used.

    ``LAZY`` maps a command name to ``"module:attr"``, where attr is a click command or an installer
    function that adds its commands to the group. So ``sre-llm render`` never imports the dataset,
    registry or training code (tests/test_core_light.py checks it).
    """

    def __init__(self, *args: object, lazy: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})
        self._installed: set[str] = set()

    def _install(self, target: str) -> None:
        if target in self._installed:
            return
        self._installed.add(target)
        module, _, attr = target.partition(":")
        obj = getattr(__import__(module, fromlist=[attr]), attr)
        if isinstance(obj, click.Command):
            self.add_command(obj)
        else:
            obj(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self._install(self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for target in sorted(set(self.lazy.values())):
            self._install(target)
        return super().list_commands(ctx)


# Commands that live in other modules: name → "module:command" or "module:installer".
# Register new commands HERE (not with imports at the bottom of this file).
LAZY = {
    "base-model": "sre_llm.basemodel.cli:base_model_group",
    **dict.fromkeys(["train", "export"], "sre_llm.execute.cli:register"),
    **dict.fromkeys(["dataset", "collect"], "sre_llm.dataset.cli:register"),
    # register … rollback at the top level are deprecated aliases of `sre-llm registry …`
    **dict.fromkeys(["registry", "audit", "register", "sign", "verify", "promote", "rollback"],
                    "sre_llm.registry.cli:install"),
    **dict.fromkeys(["rollout", "serve"], "sre_llm.deploy.cli:install"),
    "gateway": "sre_llm.serve.__main__:main",
    "eval": "sre_llm.evaluate.cli:eval_command",
    "plan": "sre_llm.plan.cli:plan_cmd",
    "retrain": "sre_llm.retrain.cli:retrain_cmd",
}


@click.group(cls=LazyGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sre-llm")
def cli() -> None:
    """Fine-tune a local LLM that chooses agent-sre remediations, from one model-release.yaml.

    \b
    Typical flow (SPEC is a model-release.yaml):
      sre-llm validate specs/*.yaml        # strict checks, every error at once
      sre-llm render specs/*.yaml          # LLaMA Factory configs + k8s manifests, rendered/
      sre-llm render --check specs/*.yaml  # CI: exit 1 if rendered/ is stale
      sre-llm dataset build SPEC           # collect, label, redact, dedupe, split
      sre-llm train SPEC                   # LLaMA Factory fine-tune, runs/<name>/<version>/
      sre-llm eval SPEC --model latest     # held-out test split vs the gates, report.html
      sre-llm registry register SPEC --model DIR   # then registry sign, verify, promote
      sre-llm rollout start SPEC           # A/B test, 10 -> 50 -> 100 %, automatic rollback

    Every command takes --json (one object on stdout, also for errors).
    Exit codes: 0 ok, 1 a check failed, 2 bad input or cannot run here, 3 internal error.
    Shell completion: eval "$(sre-llm completion bash)" (or zsh, fish).
    """


@cli.command()
@click.argument("specs", nargs=-1, type=click.Path(dir_okay=False))
@JSON_OPTION
def validate(specs: tuple[str, ...], as_json: bool) -> None:
    """Validate model-release specs; report every problem as FILE:LINE:COL: PATH: MESSAGE.

    Writes nothing. Exit 0 when all specs are valid, 2 otherwise (with --json the problems are
    error.diagnostics: file, line, col, path, message).
    """
    from sre_llm import api

    loaded = api.validate(specs)
    if as_json:
        ok({"specs": [{"path": s.path, "name": s.release.metadata.name,
                                          "version": s.release.metadata.version, "sha256": s.digest} for s in loaded]})
    else:
        for s in loaded:
            click.echo(f"{s.path}: ok ({s.release.metadata.name} {s.release.metadata.version})")


@cli.command()
@click.argument("specs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if rendered/ differs from the specs.")
@click.option("--templates", type=click.Path(file_okay=False), help="Folder of templates overriding the built-in ones.")
@click.option("--out", "root", default="rendered", show_default=True, help="Folder rendered releases go under.")
@JSON_OPTION
def render(specs: tuple[str, ...], check: bool, templates: str | None, root: str, as_json: bool) -> None:
    """Render specs into LLaMA Factory train/eval configs under rendered/<name>/<version>/.

    Output is byte-stable: the same spec and templates always give the same bytes. Files that the
    spec no longer produces are removed (reported as stale). With --check nothing is written and
    any difference exits 1, which is what CI runs on every pull request.
    """
    from sre_llm import api

    result = api.render(specs, check=check, templates=templates, root=root)
    report = {"check": check, "drift": bool(result.drift), "warnings": list(result.warnings),
              "files": [{"path": c.path, "status": c.status} for c in result.changes]}
    if not as_json:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
    if as_json and not (check and result.drift):
        ok(report)
    elif not as_json:
        for c in result.changes:
            if c.drift or not check:
                verb = {"stale": "stale (removed)" if not check else "stale"}.get(c.status, c.status)
                click.echo(f"{verb:>16}  {c.path}")
        if check and not result.drift:
            click.echo(f"rendered/ is up to date ({len(result.changes)} files)")
    if check and result.drift:
        raise CheckFailed(f"{len(result.drift)} rendered file(s) out of date: run `sre-llm render {' '.join(specs)}`",
                          code="drift", details=report)


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Write the schema to this file (atomically).")
@click.option("--check", is_flag=True, help="With --out: exit 1 if the file differs instead of writing it.")
@JSON_OPTION
def schema(out: str | None, check: bool, as_json: bool) -> None:
    """Print the JSON Schema of model-release.yaml (editors use it for completion and checks).

    With --json and no --out, the schema itself is the report's "schema" field.
    """
    from sre_llm import api
    from sre_llm.fsutil import write_atomic

    text = api.schema_text()
    if check and out is None:
        raise click.UsageError("--check needs --out FILE")
    if out is None:
        if as_json:
            ok(schema=json.loads(text))
        else:
            click.echo(text, nl=False)
        return
    if check:
        if not Path(out).is_file() or Path(out).read_text() != text:
            raise CheckFailed(f"{out} is out of date: run `sre-llm schema --out {out}`", code="drift", path=out)
        message, changed = f"{out} is up to date", False
    else:
        write_atomic(out, text)
        message, changed = f"wrote {out}", True
    if as_json:
        ok(path=out, written=changed)
    else:
        click.echo(message)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@JSON_OPTION
def preflight(spec: str, as_json: bool) -> None:
    """Check that this machine can run the spec's training (GPU, bf16, bitsandbytes, model on disk).

    Validation looks only at the file; this looks at the machine. Exit 2 when something is missing
    (the same code as `sre-llm train --dry-run` for the same problem), each problem naming the
    setting and what to do instead.
    """
    from sre_llm import api
    from sre_llm.execute.train import PreflightFailed
    from sre_llm.preflight import preflight as run_preflight

    (loaded,) = api.validate([spec])
    problems = run_preflight(loaded.release)
    if problems:
        raise PreflightFailed(spec, problems)
    if as_json:
        ok(spec=spec, problems=[])
    else:
        click.echo(f"{spec}: this machine can run it")


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@JSON_OPTION
def completion(shell: str, as_json: bool) -> None:
    """Print the shell completion script for SHELL.

    \b
      eval "$(sre-llm completion bash)"        # in ~/.bashrc
      eval "$(sre-llm completion zsh)"         # in ~/.zshrc
      sre-llm completion fish > ~/.config/fish/completions/sre-llm.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # noqa: S101 - an invariant for the type checker, not a security check; the choices above are click's own shells
    script = cls(cli, {}, "sre-llm", "_SRE_LLM_COMPLETE").source()
    if as_json:
        ok(shell=shell, script=script)
    else:
        click.echo(script)


def _fail(as_json: bool, exit_code: int, code: str, lines: list[str], payload: dict | None = None) -> None:
    """Report a failure: the lines on stderr; under --json also the one error object on stdout."""
    for line in lines:
        click.echo(line, err=True)
    if as_json:
        # One line: a JSON document for one-shot commands, the last JSON line for streaming ones (train).
        click.echo(json.dumps(payload or {"ok": False, "error": {"code": code, "message": "\n".join(lines)}},
                              sort_keys=True, ensure_ascii=False, default=str))
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: map errors to exit codes (and --json error objects) in one place."""
    # pydantic scans every installed distribution's entry points for plugins at the first model
    # class (~10 ms of a ~150 ms render); the CLI uses none. Users can still opt in explicitly.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = json_requested(args)
    try:
        try:
            cli.main(args=args, prog_name="sre-llm", standalone_mode=False)
        except ModuleNotFoundError as exc:
            extra = missing_extra(exc)
            if extra is None:
                raise
            raise extra from exc
    except click.exceptions.Abort:
        _fail(as_json, 130, "interrupted", ["aborted"])
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if not as_json:
            exc.show()
            sys.exit(EXIT_BAD_INPUT)
        _fail(True, EXIT_BAD_INPUT, "usage", [f"Error: {exc.format_message()}"])
    except SreLlmError as exc:
        _fail(as_json, exc.exit_code, exc.code, exc.lines(), exc.to_json())
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _fail(as_json, 130, "interrupted", ["interrupted"])
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        log = Path(tempfile.gettempdir()) / f"sre-llm-crash-{os.getpid()}-{int(time.time())}.log"
        log.write_text(traceback.format_exc())
        message = f"sre-llm: internal error: {type(exc).__name__}: {exc} (traceback in {log})"
        _fail(as_json, EXIT_INTERNAL, "internal", [message],
              {"ok": False, "error": {"code": "internal", "message": message, "path": str(log)}})
    sys.exit(0)


# Other modules' commands are registered lazily in LAZY above, not by importing them here.

if __name__ == "__main__":
    main()
