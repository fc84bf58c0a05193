"""Commands of the registry stage: ``sre-llm registry register|sign|verify|promote|rollback|list|
show|diff|keygen`` (``audit verify|checkpoint`` live in :mod:`sre_llm.registry.audit_cli`). Each
parses, calls one library function, prints, and lets :func:`sre_llm.cli.main` map errors to exit
codes. The lifecycle verbs were top-level commands
before 0.2.0; those names stay one minor release as hidden, deprecated aliases.

Only click is imported at module level: ``sre-llm validate`` must stay light.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from sre_llm.clikit import JSON_OPTION, ROOT_OPTION, deprecated_alias, with_options
from sre_llm.clikit import ok as _ok

#: The release in which the deprecated top-level aliases (``sre-llm register`` …) go away.
ALIASES_REMOVED_IN = "0.3.0"


def _common(fn: Callable) -> Callable:
    """--root, --store and --json."""
    return with_options(
        fn,
        ROOT_OPTION,
        click.option("--store", type=click.Path(file_okay=False), envvar="SRE_LLM_ARTIFACT_STORE",
                     help="Artifact store directory, or oci://HOST/REPO [default: ROOT/.cache/artifacts]."),
    )


def _registry(root: str, store: str | None):
    from sre_llm.registry.service import open_registry

    return open_registry(root, store)


_name = click.option("-n", "--name", "model", help="Registered model (release name); optional when only one exists.")
_pubkey = click.option("--public-key", type=click.Path(dir_okay=False),
                       help="Verify with this public key (PEM) instead of the recorded one.")
_chain = click.option("--certificate-chain", "chain", multiple=True, type=click.Path(dir_okay=False),
                      help="Trusted CA certificate(s) for the certificate method (repeatable).")


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="Model directory to register (adapter or merged weights, tokenizer, config).")
@click.option("--metrics", type=click.Path(dir_okay=False), help="Evaluation report (eval.json) with the gate figures.")
@click.option("--run", "run_record", type=click.Path(dir_okay=False), help="Training run record (run.json) for lineage.")
@click.option("--bump", type=click.Choice(["patch", "minor", "major"]),
              help="Register as the next version of this kind instead of the spec's version.")
@click.option("--sbom", "sboms", multiple=True, metavar="ROLE=PYTHON",
              help="Attach the CycloneDX SBOM of this Python's environment (repeatable), e.g. "
                   "serve=.venv-serve/bin/python [default: train=the running Python].")
@click.option("--no-sbom", is_flag=True, help="Attach no SBOM.")
@_common
def register(spec: str, model_dir: str, metrics: str | None, run_record: str | None, bump: str | None,
             sboms: tuple[str, ...], no_sbom: bool, root: str, store: str | None, as_json: bool) -> None:
    """Register a model directory as a version of the spec's release.

    The version is the spec's metadata.version. Registering the same version again with the same
    digests changes nothing; with different digests it is refused (exit 1) and the next versions
    are offered: new base model = major, new data = minor, recipe change = patch.
    """
    from sre_llm.errors import BadInput
    from sre_llm.registry.sbom import parse_roles
    from sre_llm.registry.service import register as do_register

    if no_sbom and sboms:
        raise BadInput("--no-sbom and --sbom exclude each other")
    reg = _registry(root, store)
    res = do_register(reg, spec, model_dir, metrics, run_record, bump,  # type: ignore[arg-type]
                      sboms=[] if no_sbom else (parse_roles(sboms) or None))
    e = res.entry
    if as_json:
        _ok({"model": res.model, "version": res.version, "created": res.created,
               "artifact": e.artifact.digest, "gates_passed": e.gates_passed, "index": str(res.index_path),
               "store": str(reg.store.local_tree(e.artifact.digest)),
               "sbom": [r.model_dump() for r in e.sbom or []]})
        return
    verb = "registered" if res.created else "already registered (unchanged)"
    click.echo(f"{res.model} {res.version}: {verb}")
    click.echo(f"  artifact  {e.artifact.digest} ({len(e.artifact.files)} files, {e.artifact.size} bytes)")
    click.echo(f"  gates     {'passed' if e.gates_passed else 'not passed' if e.gates else 'no metrics'}")
    for r in e.sbom or []:
        click.echo(f"  sbom      {r.path} ({r.environment}, {r.components} components)")
    click.echo(f"  index     {res.index_path}")


@click.command()
@click.argument("version")
@_name
@click.option("--method", type=click.Choice(["key", "certificate", "sigstore"]), help="Override spec.signing.method.")
@click.option("--key", help="Private key: a PEM path, file:PATH or env:NAME [default: spec.signing.private_key].")
@click.option("--certificate-chain", "chain", multiple=True, type=click.Path(dir_okay=False),
              help="Signing certificate first, then its CAs (certificate method; repeatable).")
@click.option("--public-key", type=click.Path(dir_okay=False), help="Public key recorded for verification (key method).")
@click.option("--force", is_flag=True, help="Re-sign a version that already has a signature.")
@_common
def sign(version: str, model: str | None, method: str | None, key: str | None, chain: tuple[str, ...],
         public_key: str | None, force: bool, root: str, store: str | None, as_json: bool) -> None:
    """Sign a registered version with OpenSSF model-signing; the bundle is kept with the version.

    Methods: key (EC private key, offline), certificate (key + certificate chain, offline),
    sigstore (keyless, needs the network and an OIDC identity such as GitHub Actions').
    """
    from sre_llm.registry.release import sign as do_sign

    reg = _registry(root, store)
    name = reg.resolve_model(model)
    sig = do_sign(reg, name, version, method=method, private_key=key, certificate_chain=chain,
                  public_key=public_key, force=force)
    if as_json:
        _ok({"model": name, "version": version, **sig.model_dump(mode="json", exclude_none=True)})
    else:
        click.echo(f"{name} {version}: signed ({sig.method}{', key ' + sig.key_id[:16] if sig.key_id else ''}) → {sig.bundle}")


@click.command()
@click.argument("version")
@_name
@_pubkey
@_chain
@_common
def verify(version: str, model: str | None, public_key: str | None, chain: tuple[str, ...],
           root: str, store: str | None, as_json: bool) -> None:
    """Re-hash a version's stored files and check its signature; exit 1 with the reason if bad."""
    from sre_llm.registry.release import verify as do_verify

    reg = _registry(root, store)
    name = reg.resolve_model(model)
    res = do_verify(reg, name, version, public_key=public_key, certificate_chain=chain)
    if as_json:
        _ok({**res})
    else:
        click.echo(f"{name} {res['version']}: signature verified ({res['method']}, artifact {res['artifact']})")


def _alias_report(res, as_json: bool) -> None:
    if as_json:
        _ok({"model": res.model, "alias": res.alias, "version": res.version, "previous": res.previous,
               "changed": res.changed, "commit": res.commit, "paths": res.paths})
    elif not res.changed:
        click.echo(f"{res.model} {res.version} is already {res.alias}; nothing to do")
    else:
        where = f"committed {res.commit[:12]}" if res.commit else "not committed (--no-commit)"
        click.echo(f"{res.model} {res.alias}: {res.previous or 'none'} → {res.version} ({where})")


@click.command()
@click.argument("version")
@_name
@click.option("--alias", default="champion", show_default=True, type=click.Choice(["champion", "challenger"]))
@_pubkey
@_chain
@click.option("--no-commit", is_flag=True, help="Write the index but do not commit.")
@_common
def promote(version: str, model: str | None, alias: str, public_key: str | None, chain: tuple[str, ...],
            no_commit: bool, root: str, store: str | None, as_json: bool) -> None:
    """Move an alias (champion) to a version whose gates passed and whose signature verifies.

    Refused with exit 1, naming the reason, when a gate failed or the signature is missing, does
    not match the files, or was made with another key. The change is committed with git.
    """
    from sre_llm.registry.release import promote as do_promote

    reg = _registry(root, store)
    name = reg.resolve_model(model)
    _alias_report(do_promote(reg, name, version, alias=alias, public_key=public_key, certificate_chain=chain,
                             commit=not no_commit), as_json)


@click.command()
@click.option("--to", "to", help="Version to roll back to [default: the previous champion].")
@_name
@_pubkey
@_chain
@click.option("--no-verify", is_flag=True, help="Emergency: skip re-hashing and signature checks.")
@click.option("--no-commit", is_flag=True, help="Write the index but do not commit.")
@_common
def rollback(to: str | None, model: str | None, public_key: str | None, chain: tuple[str, ...], no_verify: bool,
             no_commit: bool, root: str, store: str | None, as_json: bool) -> None:
    """Move champion back to the previous champion (or --to VERSION) and commit. Works offline."""
    from sre_llm.registry.release import rollback as do_rollback

    reg = _registry(root, store)
    name = reg.resolve_model(model)
    _alias_report(do_rollback(reg, name, to, public_key=public_key, certificate_chain=chain,
                              check_signature=not no_verify, commit=not no_commit), as_json)


def _remote(fn: Callable) -> Callable:
    """--token, --username, --ca-cert, --plain-http: how to reach an OCI registry."""
    options = (
        click.option("--token", envvar="SRE_LLM_OCI_TOKEN",
                     help="Registry credential as a reference: env:NAME or file:PATH (never the value)."),
        click.option("--username", help="User name for registries that take user + token (basic auth or a token service)."),
        click.option("--ca-cert", type=click.Path(dir_okay=False), help="CA certificate (PEM) to trust for the registry's TLS."),
        click.option("--plain-http", is_flag=True,
                     help="Plain HTTP to a non-loopback registry (loopback hosts use it unless --ca-cert is given)."),
    )
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command()
@click.argument("version")
@_name
@click.option("--to", "to", required=True, help="Where: oci://HOST[:PORT]/REPOSITORY[:TAG] (the tag defaults to the version).")
@_remote
@_common
def push(version: str, model: str | None, to: str, token: str | None, username: str | None, ca_cert: str | None,
         plain_http: bool, root: str, store: str | None, as_json: bool) -> None:
    """Push a version as one OCI artifact: model files, signature bundle, lineage.

    The manifest digest is recorded in the index (show lists it) and in the audit log; pull
    fetches by that digest.
    """
    from sre_llm.registry.transfer import push as do_push

    reg = _registry(root, store)
    res = do_push(reg, reg.resolve_model(model), version, to, token=token, username=username, ca_cert=ca_cert,
                  plain_http=plain_http)
    if as_json:
        _ok({**res})
    else:
        click.echo(f"{res['model']} {res['version']}: pushed → {res['reference']} (tag {res['tag']}, "
                   f"{'signed' if res['signed'] else 'UNSIGNED'}, {res['blobs_sent']} blob(s) sent)")


@click.command()
@click.argument("ref")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to create (absent or empty): model/, signature.sigstore.json, lineage.json.")
@click.option("--verify", "verify", is_flag=True, help="Check the signature against the pinned signers before writing.")
@_name
@_pubkey
@_chain
@click.option("--trusted-key", "trusted_keys", multiple=True,
              help="Trust this signer fingerprint (sha256:<hex>, repeatable), in addition to the spec's.")
@click.option("--spec", type=click.Path(dir_okay=False),
              help="Spec whose signing section pins the signers [default: the spec ROOT registered the version from].")
@_remote
@_common
def pull(ref: str, out: str, verify: bool, model: str | None, public_key: str | None, chain: tuple[str, ...],
         trusted_keys: tuple[str, ...], spec: str | None, token: str | None, username: str | None,
         ca_cert: str | None, plain_http: bool, root: str, store: str | None, as_json: bool) -> None:
    """Fetch an OCI artifact by digest into --out, refusing anything that does not check.

    REF is oci://HOST/REPO@sha256:… (or :TAG, resolved to a digest once) or a version/alias of
    the index (its recorded push). Every blob is checked against its digest; with --verify the
    signature must verify and its signer must be pinned (spec.signing.trusted_keys, else the
    spec's public_key; sigstore: identity + oidc_issuer). On failure exit 1 and nothing in --out.
    """
    from sre_llm.registry.transfer import pull as do_pull

    reg = _registry(root, store)
    res = do_pull(reg, ref, out, verify=verify, model=model, public_key=public_key, certificate_chain=chain,
                  trusted_keys=trusted_keys, spec=spec, token=token, username=username, ca_cert=ca_cert,
                  plain_http=plain_http)
    if as_json:
        _ok({**res})
    else:
        checked = f"signature verified ({res['method']}, signer {res['signer'] or 'sigstore identity'})" \
            if res["verified"] else "digests checked, signature NOT verified (--verify)"
        click.echo(f"{res['reference']} → {res['out']}: {res['files']} files, {res['bytes']} bytes; {checked}")


@click.group()
def registry() -> None:
    """The model registry: register, sign, verify, promote, roll back, read, make keys.

    \b
    Index: registry/<model>.yaml in the repository (a commit per change); files in a
    content-addressed store; every step a line in the hash-chained audit/audit.jsonl.
      sre-llm registry register SPEC --model DIR --metrics eval.json --run run.json
      sre-llm registry sign VERSION --key file:cosign.key
      sre-llm registry verify VERSION
      sre-llm registry promote VERSION            # champion, when gates passed and signature verifies
      sre-llm registry rollback                   # champion back to the previous one
      sre-llm registry push VERSION --to oci://HOST/REPO   # one OCI artifact, recorded by digest
      sre-llm registry pull REF --out DIR --verify          # by digest; refused unless it checks
      sre-llm registry list / show VERSION / diff A B
    """


@registry.command("list")
@_name
@_common
def list_cmd(model: str | None, root: str, store: str | None, as_json: bool) -> None:
    """Versions of a model, newest first, with status, aliases, gates and signature."""
    from sre_llm.registry import index as ix
    from sre_llm.registry.service import list_versions

    reg = _registry(root, store)
    if model is None and not ix.models(reg.root):  # an empty registry is an answer, not an error
        if as_json:
            _ok(model=None, versions=[])
        else:
            click.echo(f"{reg.root / ix.REGISTRY_DIR}: no model registered yet")
        return
    name = reg.resolve_model(model)
    rows = list_versions(reg, name)
    if as_json:
        _ok({"model": name, "versions": rows})
        return
    click.echo(f"{'VERSION':<12} {'STATUS':<12} {'ALIASES':<20} {'GATES':<6} {'SIGNED':<6} ARTIFACT")
    for r in rows:
        click.echo(f"{r['version']:<12} {r['status']:<12} {','.join(r['aliases']) or '-':<20} "
                   f"{'pass' if r['gates_passed'] else 'fail':<6} {'yes' if r['signed'] else 'no':<6} {r['artifact'][:19]}")


@registry.command("show")
@click.argument("version")
@_name
@_common
def show_cmd(version: str, model: str | None, root: str, store: str | None, as_json: bool) -> None:
    """Everything recorded for one version (or alias, such as champion)."""
    from sre_llm.registry.service import show

    reg = _registry(root, store)
    data = show(reg, reg.resolve_model(model), version)
    if as_json:
        _ok({**data})
    else:
        from sre_llm.registry.index import yaml_io

        yaml_io().dump(data, click.get_text_stream("stdout"))


@registry.command("diff")
@click.argument("a")
@click.argument("b")
@_name
@_common
def diff_cmd(a: str, b: str, model: str | None, root: str, store: str | None, as_json: bool) -> None:
    """Fields that differ between two versions (lineage, gates, files)."""
    from sre_llm.registry.service import diff

    reg = _registry(root, store)
    rows = diff(reg, reg.resolve_model(model), a, b)
    if as_json:
        _ok({"a": a, "b": b, "differences": rows})
        return
    for r in rows:
        click.echo(f"{r['field']}: {r['a']} → {r['b']}")
    if not rows:
        click.echo(f"{a} and {b} do not differ")


@registry.command("keygen")
@click.argument("private_key", type=click.Path(dir_okay=False))
@click.argument("public_key", type=click.Path(dir_okay=False))
@click.option("--curve", default="P-256", show_default=True, type=click.Choice(["P-256", "P-384", "P-521"]))
@JSON_OPTION
def keygen(private_key: str, public_key: str, curve: str, as_json: bool) -> None:
    """Write a new EC signing key pair (private key mode 0600; never overwrites)."""
    from sre_llm.signing import generate_key

    key_id = generate_key(private_key, public_key, curve)
    if as_json:
        _ok(private_key=private_key, public_key=public_key, key_id=key_id, fingerprint=f"sha256:{key_id}", curve=curve)
    else:
        click.echo(f"wrote {private_key} and {public_key} (key id {key_id}; "
                   f"pin it with spec.signing.trusted_keys: [sha256:{key_id}])")


LIFECYCLE = [register, sign, verify, promote, rollback]
for _command in LIFECYCLE:
    registry.add_command(_command)
registry.add_command(push)
registry.add_command(pull)


def install(cli: click.Group) -> None:
    """Add ``registry`` and ``audit`` to the ``sre-llm`` group, and the deprecated top-level aliases."""
    from sre_llm.registry.audit_cli import audit_group

    cli.add_command(registry)
    cli.add_command(audit_group)
    for command in LIFECYCLE:
        cli.add_command(deprecated_alias(command, f"registry {command.name}", ALIASES_REMOVED_IN))
