"""One error base class, mapped to exit codes in one place (see ``exit_code``).

Every error also has a stable ``code`` (a short snake_case word machines can switch on) and may
carry ``path`` (the file it is about) and ``details`` (extra fields of a report). Under ``--json``
the CLI prints each error as one object of one shape::

    {"ok": false, "error": {"code": "...", "message": "...", "path": "..."}, ...details}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one file, at one place: ``file:line:col: path: message``."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SreLlmError(Exception):
    """Base of every error sre-llm reports to a user; ``exit_code`` decides the process status."""

    exit_code = EXIT_BAD_INPUT
    code = "bad_input"

    def __init__(self, message: str = "", *, path: str | None = None, details: dict[str, Any] | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.path = path
        self.details = dict(details or {})
        if code is not None:
            self.code = code

    def lines(self) -> list[str]:
        return [str(self)]

    def to_json(self) -> dict[str, Any]:
        """The one error shape of ``--json`` output."""
        error: dict[str, Any] = {"code": self.code, "message": "\n".join(self.lines())}
        if self.path:
            error["path"] = str(self.path)
        return {**self.details, "ok": False, "error": error}


class BadInput(SreLlmError):
    """Bad input or usage, or this machine cannot run what was asked: exit 2, nothing written."""

    exit_code = EXIT_BAD_INPUT
    code = "bad_input"


class SpecInvalid(BadInput):
    """A spec file failed validation; carries every diagnostic at once."""

    code = "spec_invalid"

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        files = sorted({d.file for d in self.diagnostics})
        super().__init__("\n".join(str(d) for d in self.diagnostics), path=files[0] if len(files) == 1 else None,
                         details={"diagnostics": [d.__dict__ for d in self.diagnostics]})

    def lines(self) -> list[str]:
        return [str(d) for d in self.diagnostics]


class MissingExtra(BadInput):
    """An optional part of sre-llm is not installed: exit 2 naming the pip extra that brings it."""

    code = "missing_extra"


class CheckFailed(SreLlmError):
    """A check ran and did not pass (drift, gate not met, bad signature): exit 1."""

    exit_code = EXIT_CHECK_FAILED
    code = "check_failed"


#: Top-level module of an optional dependency → the extra that installs it.
EXTRAS: dict[str, str] = {
    "llamafactory": "train", "torch": "train", "transformers": "train", "peft": "train", "trl": "train",
    "bitsandbytes": "train", "datasets": "train", "accelerate": "train", "badam": "train",
    "model_signing": "registry", "OpenSSL": "registry", "cryptography": "registry", "git": "registry",
    "pyrage": "dataset",
    "matplotlib": "eval",
    "starlette": "serve", "httpx": "serve", "hypercorn": "serve", "prometheus_client": "serve",
    "grafana_foundation_sdk": "loop",
}


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The :class:`MissingExtra` for an optional module that failed to import, else None."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return MissingExtra(f"this command needs the optional package {top!r}: pip install 'sre-llm[{extra}]'",
                        details={"extra": extra, "module": top})
