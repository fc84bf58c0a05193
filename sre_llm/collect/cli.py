"""``sre-llm collect …`` commands (added to the group in :mod:`sre_llm.dataset.cli`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sre_llm.clikit import JSON_OPTION
from sre_llm.clikit import ok as _ok


def _alertmanager_source(spec: str | None):
    if not spec:
        return None
    from sre_llm import api

    (loaded,) = api.validate([spec])
    sources = [s for s in loaded.release.spec.dataset.sources if s.type == "alertmanager"]
    return sources[0] if sources else None


def add_commands(group: click.Group) -> None:
    """Attach the collector commands to ``group``."""

    @group.command("serve")
    @click.argument("spec", required=False, type=click.Path(dir_okay=False))
    @click.option("--store", help="Folder payloads are appended to (default: the spec's alertmanager source).")
    @click.option("--listen", help="host:port to listen on; port 0 picks a free one (default: the spec's, or 127.0.0.1:9095).")
    @click.option("--token", "token_ref", help="Bearer token reference Alertmanager must present (env:NAME or file:PATH).")
    @click.option("--tls-cert", help="TLS certificate file (serve HTTPS).")
    @click.option("--tls-key", "tls_key_ref", help="TLS private key reference (file:PATH or env:NAME).")
    @click.option("--tls-client-ca", type=click.Path(dir_okay=False),
                  help="CA file: clients must present a certificate it signed (mutual TLS).")
    @click.option("--read-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.05),
                  help="Seconds a client gets for its headers, for its body, and to stay idle between requests.")
    @click.option("--outcome-window", default=1800.0, show_default=True, type=click.FloatRange(min=1),
                  help="Seconds after a POSTed decision within which its alert's resolution counts as resolved.")
    @click.option("--outcome-grace", default=300.0, show_default=True, type=click.FloatRange(min=0),
                  help="Extra seconds to wait for Alertmanager's resolved notification before counting unresolved.")
    @click.option("--rollout-spec", type=click.Path(dir_okay=False),
                  help="Spec file whose rollout Flagger's webhooks judge: POST /flagger/shadow|check|confirm "
                  "(re-read when it changes).")
    @click.option("--quiet", is_flag=True, help="Do not log each request.")
    @JSON_OPTION
    def serve(spec, store, listen, token_ref, tls_cert, tls_key_ref, tls_client_ca, read_timeout, outcome_window,
              outcome_grace, rollout_spec, quiet, as_json) -> None:
        """Receive Alertmanager webhooks and append them durably to the store.

        Each payload is fsync'd to disk before the 200 (concurrent ones share an fsync); when it
        cannot be stored the answer is 503, so Alertmanager retries. Anything that is not an
        Alertmanager v4 webhook gets a 4xx with the reason. Prints the address it listens on
        (with --json one object: {"ok": true, "url": …, "store": …}), then serves until SIGTERM
        or Ctrl-C.
        """
        import os

        from sre_llm.collect.alertmanager import key_file, make_server
        from sre_llm.errors import BadInput
        from sre_llm.secrets import resolve

        src = _alertmanager_source(spec)
        store = store or (src.store if src else None)
        if not store:
            raise BadInput("no store: give --store or a spec with an alertmanager source")
        listen = listen or (src.listen if src else "127.0.0.1:9095")
        token_ref = token_ref or (src.bearer_token if src else None)
        tls_cert = tls_cert or (src.tls_cert if src else None)
        tls_key_ref = tls_key_ref or (src.tls_key if src else None)
        token = resolve(token_ref) if token_ref else None
        key_path, cleanup = key_file(tls_key_ref) if tls_key_ref else (None, None)
        log = None if quiet else (lambda line: click.echo(line, err=True))
        try:
            server = make_server(store, listen, token, tls_cert, key_path, log, tls_client_ca=tls_client_ca,
                                 read_timeout_s=read_timeout, outcome_window_s=outcome_window,
                                 outcome_grace_s=outcome_grace, rollout_spec=rollout_spec)
        finally:
            if cleanup:
                os.unlink(cleanup)
        host, port = server.server_address[:2]
        scheme = "https" if tls_cert else "http"
        if token is None:
            click.echo("warning: no bearer token configured; any client can post", err=True)
        if as_json:
            _ok(url=f"{scheme}://{host}:{port}/", store=str(store), authenticated=token is not None)
        else:
            click.echo(f"listening on {scheme}://{host}:{port}/ storing to {store}", err=False)
        sys.stdout.flush()
        try:
            server.serve_forever()  # until SIGTERM / SIGINT
        finally:
            server.server_close()

    @group.command("snapshot")
    @click.argument("spec", type=click.Path(dir_okay=False))
    @click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL file of raw records (atomic).")
    @click.option("--type", "types", multiple=True, help="Only sources of this type (repeatable).")
    @JSON_OPTION
    def snapshot(spec, out, types, as_json) -> None:
        """Read the spec's sources once and write their raw records to a JSONL file.

        The file feeds `sre-llm dataset build --input` (and keeps a record of what was read).
        """
        from sre_llm import api
        from sre_llm.dataset.build import source_records
        from sre_llm.dataset.records import Quarantined
        from sre_llm.fsutil import write_atomic

        (loaded,) = api.validate([spec])
        lines, counts, skipped = [], {}, []
        for source in loaded.release.spec.dataset.sources:
            if types and source.type not in types:
                continue
            for r in source_records(source, Path(".")):
                if isinstance(r, Quarantined):
                    skipped.append(r)
                    continue
                lines.append(json.dumps(r, ensure_ascii=False, sort_keys=True))
                counts[source.type] = counts.get(source.type, 0) + 1
        write_atomic(out, "".join(l + "\n" for l in lines), mode=0o600)
        if as_json:
            _ok(path=out, records=len(lines), by_source=counts,
                skipped=[{"where": q["where"] or q["source"], "reason": q["reason"]} for q in skipped])
        else:
            click.echo(f"wrote {len(lines)} records to {out} ({', '.join(f'{k} {v}' for k, v in counts.items()) or 'none'})")
        for q in skipped:  # unreadable input is reported, never dropped silently
            click.echo(f"skipped {q['where'] or q['source']}: {q['reason']}", err=True)
