"""One error base class, mapped to exit codes in one place (see ``exit_code``)."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


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

    def lines(self) -> list[str]:
        return [str(self)]


class BadInput(SreLlmError):
    """Bad input or usage: exit 2, nothing written."""

    exit_code = EXIT_BAD_INPUT


class SpecInvalid(BadInput):
    """A spec file failed validation; carries every diagnostic at once."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def lines(self) -> list[str]:
        return [str(d) for d in self.diagnostics]


class CheckFailed(SreLlmError):
    """A check ran and did not pass (drift, gate not met, bad signature): exit 1."""

    exit_code = EXIT_CHECK_FAILED
