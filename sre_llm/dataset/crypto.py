"""Encryption at rest with age (pyrage; the files open with the ``age`` CLI too).

Encryption is to the spec's recipients (public keys: no secret needed to build). Decryption
needs the identity from a secret reference and goes through :func:`decrypt_to`: the plaintext is
authenticated in memory first (age checks every 64 KiB chunk and the final one), then written to
a private (0600) temporary file beside the destination and renamed only on success. A tampered
or truncated file raises and leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.fsutil import write_atomic
from sre_llm.secrets import resolve

SUFFIX = ".age"


def _recipients(recipients: Sequence[str]) -> list:
    import pyrage

    out = []
    for r in recipients:
        try:
            out.append(pyrage.ssh.Recipient.from_str(r) if r.startswith("ssh-") else pyrage.x25519.Recipient.from_str(r))
        except pyrage.RecipientError as exc:
            raise BadInput(f"age recipient {r[:24]}…: {exc}") from None
    return out


def identities(text: str, ref: str) -> list:
    """age identities from the text of an identity file (``age-keygen`` output; comments ok)."""
    import pyrage

    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            # Never show the line: it is (part of) a private key.
            raise BadInput(f"{ref}: not an age identity file (expected AGE-SECRET-KEY-1… lines)") from None
    if not found:
        raise BadInput(f"{ref}: holds no age identity")
    return found


def encrypt(data: bytes, recipients: Sequence[str]) -> bytes:
    """``data`` encrypted to every recipient (binary age format)."""
    import pyrage

    if not recipients:
        raise BadInput("encryption needs at least one age recipient")
    return pyrage.encrypt(data, _recipients(recipients))


def decrypt(data: bytes, identity_ref: str, root: str | Path = ".", what: str = "data") -> bytes:
    """Authenticated plaintext of ``data``; :class:`CheckFailed` when it does not decrypt."""
    import pyrage

    ids = identities(resolve(identity_ref, root), identity_ref)
    try:
        return pyrage.decrypt(data, ids)
    except pyrage.DecryptError as exc:
        raise CheckFailed(f"{what}: cannot decrypt with {identity_ref} ({exc}): wrong key, or the file was altered") from None


def decrypt_to(path: str | Path, identity_ref: str, dest: str | Path, root: str | Path = ".") -> Path:
    """Decrypt ``path`` into ``dest`` (mode 0600), all or nothing."""
    path, dest = Path(path), Path(dest)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    write_atomic(dest, decrypt(data, identity_ref, root, what=str(path)), mode=0o600)
    return dest


def decrypt_folder(folder: str | Path, identity_ref: str, out: str | Path, root: str | Path = ".") -> list[Path]:
    """Decrypt every ``*.age`` file of a dataset folder into ``out`` (0700), copying the
    unencrypted metadata (``dataset_info.json``, the card) beside them, so ``out`` is a dataset
    folder LLaMA Factory can read."""
    import shutil

    folder, out = Path(folder), Path(out)
    encrypted = sorted(folder.glob(f"*{SUFFIX}"))
    if not encrypted:
        raise BadInput(f"{folder}: no {SUFFIX} files to decrypt")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    done = [decrypt_to(p, identity_ref, out / p.name.removesuffix(SUFFIX), root) for p in encrypted]
    for meta in ("dataset_info.json", "dataset_card.json", "README.md"):
        if (folder / meta).is_file():
            shutil.copyfile(folder / meta, out / meta)
    return done
