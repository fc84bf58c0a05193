"""``sre-llm audit verify|checkpoint``: the hash-chained audit log and its signed checkpoints.

Thin, like :mod:`sre_llm.registry.cli` (which installs this group): the work is in
:mod:`sre_llm.audit` and :mod:`sre_llm.registry.trust` (which keys are pinned, which key signs).
"""

from __future__ import annotations

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION
from sre_llm.clikit import ok as _ok


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log of every data access, run, registration and promotion."""


_log_option = click.option("--log", "log", type=click.Path(dir_okay=False), envvar="SRE_LLM_AUDIT_LOG",
                           help="Audit log file [default: ROOT/audit/audit.jsonl]; checked against git HEAD of ROOT too.")


@audit_group.command("verify")
@ROOT_OPTION
@_log_option
@click.option("--spec", "specs", multiple=True, type=click.Path(dir_okay=False),
              help="Spec(s) whose signing keys are trusted for checkpoints [default: every spec the registry "
                   "indexes under ROOT registered from].")
@click.option("--trusted-key", "trusted_keys", multiple=True,
              help="Also trust checkpoints by this key fingerprint (sha256:<hex>, repeatable).")
@JSON_OPTION
def audit_verify(root: str, log: str | None, specs: tuple[str, ...], trusted_keys: tuple[str, ...],
                 as_json: bool) -> None:
    """Check the chain and its signed checkpoints: exit 1 naming the first edited, reordered,
    deleted or inserted record, or the checkpoint a rewritten (re-hashed) chain no longer matches."""
    from sre_llm import audit
    from sre_llm.errors import CheckFailed
    from sre_llm.registry.trust import audit_pins

    report = audit.verify_in_repo(root, log, audit_pins(root, specs, trusted_keys))
    if report.problem is not None:
        raise CheckFailed(f"{report.path}: {report.problem}", code="audit_broken", path=str(report.path),
                          details={"report": report.to_dict()})
    if as_json:
        _ok(report.to_dict())
    else:
        tail = f", matches git HEAD ({report.committed_records} committed)" if report.committed_records is not None else ""
        if report.checkpoints:
            tail += f", {report.checkpoints} signed checkpoint(s), sealed to seq {report.sealed_seq}"
        click.echo(f"{report.path}: {report.records} records, chain intact (head seq {report.head_seq}){tail}")


@audit_group.command("checkpoint")
@ROOT_OPTION
@_log_option
@click.option("--key", help="EC private key: a PEM path, file:PATH or env:NAME [default: --spec's signing.private_key].")
@click.option("--spec", type=click.Path(dir_okay=False), help="Spec whose signing.private_key signs the checkpoint.")
@JSON_OPTION
def audit_checkpoint(root: str, log: str | None, key: str | None, spec: str | None, as_json: bool) -> None:
    """Append a checkpoint signing the chain head (seq and hash) with the release key.

    `registry sign` appends one after each signature; `audit verify` checks every checkpoint
    against the pinned keys, so a chain rewritten and re-hashed before it fails there.
    """
    from sre_llm.registry.trust import audit_checkpoint as do_checkpoint

    record = do_checkpoint(root, log, key, spec)
    details = record["details"]
    if as_json:
        _ok(seq=record["seq"], head_seq=details["head_seq"], head_hash=record["digests"]["head"],
            key_id=details["key_id"], hash=record["hash"])
    else:
        click.echo(f"checkpoint seq {record['seq']}: head seq {details['head_seq']} {record['digests']['head']} "
                   f"signed by {details['key_id']}")
