"""An :class:`~sre_llm.registry.store.ArtifactStore` in an OCI repository (``--store oci://HOST/REPO``).

Every stored tree and blob is one OCI artifact (``artifactType application/vnd.sre-llm.store.v1``)
tagged by its digest, ``sha256-<hex>``: a tree's files as ``model/<path>`` layers, a blob as one
``blob`` layer. A local :class:`~sre_llm.registry.store.LocalStore` is the cache: ``put_*`` store
there first and then push; ``local_*`` pull into it when it lacks the digest, checking every blob
and the tree digest before installing, so the cache never holds what the digest does not name.

Credentials come from ``$SRE_LLM_OCI_TOKEN`` (a reference, ``env:NAME`` / ``file:PATH``) and
``$SRE_LLM_OCI_USERNAME``; ``$SRE_LLM_OCI_CA_CERT`` names a CA for TLS.
"""

from __future__ import annotations

import os
from pathlib import Path

from sre_llm import secrets
from sre_llm.errors import BadInput, CheckFailed
from sre_llm.registry import oci
from sre_llm.registry.store import (
    FileEntry,
    LocalStore,
    Tree,
    _hex,
    _remove,
    tree_digest,
)

STORE_TYPE = "application/vnd.sre-llm.store.v1"
BLOB_NAME = "blob"


class OciStore:
    """Trees and blobs in an OCI repository, cached in a local store (see the module docstring)."""

    kind = "oci"

    def __init__(self, repository: str, cache: LocalStore, root: str | Path = "."):
        self.ref = oci.Reference.parse(repository)
        if self.ref.tag or self.ref.digest:
            raise BadInput(f"--store {repository}: name a repository (oci://HOST/REPO), not a tag or digest")
        self.cache = cache
        token = os.environ.get("SRE_LLM_OCI_TOKEN")
        if token and not token.startswith(("env:", "file:")):  # never echo what may be the token itself
            raise BadInput("$SRE_LLM_OCI_TOKEN: give a reference, env:NAME or file:PATH, not the token itself")
        self._secret = secrets.resolve(token, root) if token else None
        self._username = os.environ.get("SRE_LLM_OCI_USERNAME") or None
        self._ca = os.environ.get("SRE_LLM_OCI_CA_CERT") or None

    def __repr__(self) -> str:
        return f"OciStore({self.ref.repo_url!r}, cache={self.cache!r})"

    def _client(self) -> oci.Client:
        return oci.Client(self.ref, token=self._secret, username=self._username, ca_cert=self._ca)

    @staticmethod
    def _tag(digest: str) -> str:
        return "sha256-" + _hex(digest)

    def has(self, digest: str) -> bool:
        with self._client() as client:
            return client.has_manifest(self._tag(digest))

    def put_tree(self, src: Path, skip_top: tuple[str, ...] = ()) -> Tree:
        tree = self.cache.put_tree(src, skip_top)
        root = self.cache.local_tree(tree.digest)
        layers = [oci.Layer(root / f.path, f"{oci.MODEL_DIR}/{f.path}", oci.FILE_TYPE, "sha256:" + f.sha256, f.size)
                  for f in tree.files]
        self._push(tree.digest, layers)
        return tree

    def put_blob(self, src: Path) -> str:
        digest = self.cache.put_blob(src)
        path = self.cache.local_blob(digest)
        self._push(digest, [oci.Layer(path, BLOB_NAME, "application/octet-stream", digest, path.stat().st_size)])
        return digest

    def _push(self, digest: str, layers: list[oci.Layer]) -> None:
        with self._client() as client:
            client.authenticate("pull,push")
            if not client.has_manifest(self._tag(digest)):
                client.push(layers, {oci.TITLE: digest}, self._tag(digest), STORE_TYPE)

    def _fetch(self, digest: str) -> Path:
        """Pull the artifact tagged by ``digest`` into cache staging; return the staging folder."""
        staging = self.cache._staging()
        staging.mkdir()
        try:
            with self._client() as client:
                tag = self._tag(digest)
                if not client.has_manifest(tag):
                    raise CheckFailed(f"artifact {digest} is not in the store {self.ref.repo_url}")
                pulled = client.pull(client.resolve_tag(tag), staging, STORE_TYPE, (BLOB_NAME,))
            return _checked(staging, digest, pulled)
        except BaseException:
            _remove(staging)
            raise

    def local_tree(self, digest: str) -> Path:
        if not self.cache.has(digest):
            staging = self._fetch(digest)
            try:
                self.cache._install(staging / oci.MODEL_DIR, self.cache._final(digest))
            finally:
                _remove(staging)
        return self.cache.local_tree(digest)

    def local_blob(self, digest: str) -> Path:
        if not self.cache.has(digest):
            staging = self._fetch(digest)
            try:
                os.chmod(staging / BLOB_NAME, 0o444)
                self.cache._install(staging / BLOB_NAME, self.cache._final(digest))
            finally:
                _remove(staging)
        return self.cache.local_blob(digest)

    def check_tree(self, digest: str, files: tuple[FileEntry, ...] | list[FileEntry]) -> list[str]:
        self.local_tree(digest)
        return self.cache.check_tree(digest, files)


def _checked(staging: Path, digest: str, pulled: oci.Pulled) -> Path:
    """The pulled files must be what ``digest`` names: the blob itself, or the tree's manifest."""
    if BLOB_NAME in pulled.files:
        if len(pulled.files) != 1 or "sha256:" + pulled.files[BLOB_NAME][0] != digest:
            raise CheckFailed(f"the OCI store's artifact tagged {digest} does not hold that blob")
        return staging
    files = [FileEntry(t[len(oci.MODEL_DIR) + 1:], h, n) for t, (h, n) in pulled.files.items()]
    if not files or tree_digest(files) != digest:
        raise CheckFailed(f"the OCI store's artifact tagged {digest} holds another tree ({tree_digest(files)})")
    for path in (staging / oci.MODEL_DIR).rglob("*"):
        if path.is_file():
            os.chmod(path, 0o444)
    return staging
