"""OCI distribution client: one model version as one OCI artifact (the registry's only HTTP edge).

Plain distribution-spec calls over httpx, in ORAS's conventions (each layer titled with the path
it is written to, relative to the output folder)::

    manifest  application/vnd.oci.image.manifest.v1+json, artifactType application/vnd.sre-llm.model.v1
    config    application/vnd.oci.empty.v1+json ("{}")
    layers    one per file, annotation org.opencontainers.image.title = where it goes:
              model/<path>              application/vnd.sre-llm.model.file.v1
              signature.sigstore.json   application/vnd.dev.sigstore.bundle.v0.3+json
              lineage.json              application/vnd.sre-llm.lineage.v1+json

Blobs stream both ways (a 1 GiB file is never held in memory) and are hashed as they arrive; a
blob the registry already holds is not sent again. Plain HTTP is used only for loopback hosts
without ``ca_cert`` (as Docker does) or when asked; everything else is HTTPS.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urljoin

from sre_llm.errors import BadInput, CheckFailed

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.sre-llm.model.v1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
FILE_TYPE = "application/vnd.sre-llm.model.file.v1"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
LINEAGE_TYPE = "application/vnd.sre-llm.lineage.v1+json"
TITLE = "org.opencontainers.image.title"
MODEL_DIR = "model"
BUNDLE_NAME = "signature.sigstore.json"
LINEAGE_NAME = "lineage.json"
CHUNK = 4 << 20

_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
FORM = "oci://HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]"


@dataclass(frozen=True)
class Reference:
    """``oci://host/repository[:tag][@digest]``."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not text.startswith("oci://"):
            raise BadInput(f"{text!r}: an OCI reference is {FORM}")
        rest = text[len("oci://"):]
        host, sep, path = rest.partition("/")
        if not sep or not _HOST.match(host) or not path:
            raise BadInput(f"{text!r}: an OCI reference is {FORM}")
        digest = tag = None
        if "@" in path:
            path, _, digest = path.partition("@")
            if not _DIGEST.match(digest):
                raise BadInput(f"{text!r}: digest {digest!r} is not sha256:<64 hex digits>")
        name, colon, maybe_tag = path.rpartition(":")
        if colon and "/" not in maybe_tag:
            path, tag = name, maybe_tag
            if not _TAG.match(tag):
                raise BadInput(f"{text!r}: tag {tag!r} is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
        if not _REPO.match(path):
            raise BadInput(f"{text!r}: repository {path!r} must be lower-case path components ([a-z0-9] with . _ -)")
        return cls(host, path, tag, digest)

    @property
    def repo_url(self) -> str:
        return f"oci://{self.host}/{self.repository}"

    def __str__(self) -> str:
        return self.repo_url + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.host, self.repository, None, digest)

    @property
    def loopback(self) -> bool:
        host = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host[1:self.host.index("]")]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def tag_for(version: str) -> str:
    """A version as a tag: OCI tags have no ``+``, so build metadata uses ``_`` (as Helm does)."""
    return version.replace("+", "_")


@dataclass(frozen=True)
class Layer:
    """A file to push: where it is here, where it goes (title), its digest and size."""

    path: Path
    title: str
    media_type: str
    digest: str  # sha256:<hex>
    size: int


@dataclass
class Pulled:
    """What :meth:`Client.pull` wrote into ``folder``: titles with their digests and sizes."""

    folder: Path
    digest: str
    manifest: dict[str, Any]
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # title → (sha256 hex, size)


class Client:
    """A distribution-spec client for one repository (auth once, then push or pull)."""

    def __init__(self, ref: Reference, *, token: str | None = None, username: str | None = None,
                 ca_cert: str | Path | None = None, plain_http: bool = False, timeout: float = 60.0):
        import httpx

        if ca_cert is not None and not Path(ca_cert).is_file():
            raise BadInput(f"{ca_cert}: CA certificate not found")
        self.ref = ref
        scheme = "http" if plain_http or (ref.loopback and ca_cert is None) else "https"
        self.base = f"{scheme}://{ref.host}/v2/{ref.repository}/"
        self.shown = ref.repo_url
        verify: Any = ssl.create_default_context(cafile=str(ca_cert)) if ca_cert else True
        self._secret = token
        self._username = username
        self.http = httpx.Client(verify=verify, timeout=httpx.Timeout(timeout, read=max(timeout, 300.0)),
                                 follow_redirects=True)
        self._authed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    # ── transport ──────────────────────────────────────────────────────────────────────────────

    def _request(self, method: str, url: str, *, ok: tuple[int, ...], what: str, stream: bool = False, **kw: Any):
        import httpx

        auth = kw.pop("auth", None)
        try:
            request = self.http.build_request(method, url, **kw)
            response = self.http.send(request, stream=stream, **({"auth": auth} if auth else {}))
        except httpx.ConnectError as exc:
            raise BadInput(f"{self.shown}: cannot connect to the registry ({_short(exc)})") from None
        except httpx.HTTPError as exc:
            raise CheckFailed(f"{self.shown}: {what}: {type(exc).__name__}: {_short(exc)}") from None
        if response.status_code in ok:
            return response
        if stream:
            response.read()
        if response.status_code in (401, 403):
            hint = "pass --token env:NAME or file:PATH" if self._secret is None else "the token was refused"
            raise BadInput(f"{self.shown}: {what}: the registry answered {response.status_code} ({hint})")
        raise CheckFailed(f"{self.shown}: {what}: the registry answered {response.status_code}: {_errors(response)}")

    def authenticate(self, actions: str) -> None:
        """Probe ``/v2/`` and, if the registry asks, get credentials for this repository once."""
        if self._authed:
            return
        self._authed = True
        probe = self._request("GET", urljoin(self.base, "/v2/"), ok=(200, 400, 401), what="probe")
        if probe.status_code == 200:
            return
        if probe.status_code == 400 and self.base.startswith("http:"):
            raise BadInput(f"{self.shown}: the registry refused plain HTTP (it speaks HTTPS?): pass --ca-cert CA.pem")
        if self._secret is None:
            raise BadInput(f"{self.shown}: the registry asks for credentials (401): pass --token env:NAME or file:PATH")
        challenge = probe.headers.get("www-authenticate", "")
        scheme, _, params = challenge.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        import httpx

        if scheme.lower() == "basic":
            self.http.auth = httpx.BasicAuth(self._username or "token", self._secret)
            return
        if scheme.lower() == "bearer" and "realm" in fields:
            # The distribution token flow: trade the credential for a token scoped to this repository.
            query = {"service": fields.get("service", ""), "scope": f"repository:{self.ref.repository}:{actions}"}
            auth = httpx.BasicAuth(self._username, self._secret) if self._username else None
            headers = {} if auth else {"Authorization": f"Bearer {self._secret}"}
            got = self._request("GET", fields["realm"], ok=(200,), what="token exchange", params=query,
                                auth=auth, headers=headers)
            try:
                token = got.json().get("token") or got.json().get("access_token")
            except ValueError:
                token = None
            if not token:
                raise CheckFailed(f"{self.shown}: the token service at {fields['realm']} returned no token")
            self.http.headers["Authorization"] = f"Bearer {token}"
            return
        self.http.headers["Authorization"] = f"Bearer {self._secret}"

    # ── push ───────────────────────────────────────────────────────────────────────────────────

    def has_blob(self, digest: str) -> bool:
        return self._request("HEAD", self.base + f"blobs/{digest}", ok=(200, 404), what=f"blob {digest}").status_code == 200

    def upload(self, layer: Layer) -> bool:
        """Send one blob unless the registry has it; True when it was sent. The registry checks the
        digest on completion, so a local file that changed since it was recorded is refused."""
        if self.has_blob(layer.digest):
            return False
        start = self._request("POST", self.base + "blobs/uploads/", ok=(202,), what=f"upload of {layer.title}")
        location = urljoin(self.base, start.headers["location"])
        sep = "&" if "?" in location else "?"
        self._request(
            "PUT", f"{location}{sep}digest={layer.digest}", ok=(201,), what=f"upload of {layer.title}",
            content=_read(layer.path), headers={"Content-Type": "application/octet-stream",
                                                "Content-Length": str(layer.size)},
        )
        return True

    def put_bytes(self, data: bytes, title: str) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            start = self._request("POST", self.base + "blobs/uploads/", ok=(202,), what=f"upload of {title}")
            location = urljoin(self.base, start.headers["location"])
            sep = "&" if "?" in location else "?"
            self._request("PUT", f"{location}{sep}digest={digest}", ok=(201,), what=f"upload of {title}",
                          content=data, headers={"Content-Type": "application/octet-stream"})
        return digest

    def has_manifest(self, tag: str) -> bool:
        self.authenticate("pull")
        got = self._request("HEAD", self.base + f"manifests/{tag}", ok=(200, 404), what="manifest",
                            headers={"Accept": MANIFEST_TYPE})
        return got.status_code == 200

    def push(self, layers: list[Layer], annotations: dict[str, str], tag: str,
             artifact_type: str = ARTIFACT_TYPE) -> tuple[str, int]:
        """Upload every layer, then the manifest under ``tag``; (manifest digest, blobs sent)."""
        self.authenticate("pull,push")
        sent = sum(self.upload(layer) for layer in layers)
        config = self.put_bytes(EMPTY, "config")
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY_TYPE, "digest": config, "size": len(EMPTY), "data": "e30="},
            "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": la.size,
                        "annotations": {TITLE: la.title}} for la in layers],
            "annotations": dict(sorted(annotations.items())),
        }
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        got = self._request("PUT", self.base + f"manifests/{tag}", ok=(201,), what="manifest upload",
                            content=body, headers={"Content-Type": MANIFEST_TYPE})
        returned = got.headers.get("docker-content-digest")
        if returned and returned != digest:
            raise CheckFailed(f"{self.shown}: the registry stored the manifest as {returned}, not {digest}")
        return digest, sent

    # ── pull ───────────────────────────────────────────────────────────────────────────────────

    def resolve(self) -> str:
        """The manifest digest the reference names (a tag is resolved once; a digest is kept)."""
        self.authenticate("pull")
        if self.ref.digest:
            return self.ref.digest
        return self.resolve_tag(self.ref.tag or "latest")

    def resolve_tag(self, tag: str) -> str:
        got = self._request("HEAD", self.base + f"manifests/{tag}", ok=(200, 404), what="manifest",
                            headers={"Accept": MANIFEST_TYPE})
        if got.status_code == 404:
            raise BadInput(f"{self.ref.repo_url}:{tag}: no such artifact in the registry")
        digest = got.headers.get("docker-content-digest")
        if not digest or not _DIGEST.match(digest):
            return "sha256:" + hashlib.sha256(self.manifest_bytes(tag)).hexdigest()
        return digest

    def manifest_bytes(self, ref: str) -> bytes:
        got = self._request("GET", self.base + f"manifests/{ref}", ok=(200, 404), what="manifest",
                            headers={"Accept": MANIFEST_TYPE})
        if got.status_code == 404:
            raise BadInput(f"{self.ref.repo_url}@{ref}: no such artifact in the registry")
        return got.content

    def manifest(self, digest: str, artifact_type: str = ARTIFACT_TYPE) -> dict[str, Any]:
        """The manifest stored under ``digest``, checked against it (a registry cannot swap it)."""
        body = self.manifest_bytes(digest)
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise CheckFailed(f"{self.ref.repo_url}@{digest}: the registry returned a manifest with digest {actual}")
        try:
            data = json.loads(body)
        except ValueError:
            raise CheckFailed(f"{self.ref.repo_url}@{digest}: manifest is not JSON") from None
        if data.get("artifactType") != artifact_type:
            raise BadInput(f"{self.ref.repo_url}@{digest}: not an sre-llm artifact of this kind "
                           f"(artifactType {data.get('artifactType')!r}, expected {artifact_type})")
        return data

    def download(self, digest: str, size: int, dest: Path) -> str:
        """Stream blob ``digest`` to ``dest`` (new file), hashing as it arrives; its sha256 hex."""
        h, got_size = hashlib.sha256(), 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        response = self._request("GET", self.base + f"blobs/{digest}", ok=(200,), what=f"blob {digest}", stream=True)
        try:
            with open(dest, "xb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    got_size += len(chunk)
                    if got_size > size:
                        break
                    h.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            response.close()
        if got_size != size or "sha256:" + h.hexdigest() != digest:
            raise CheckFailed(f"{dest.name}: blob {digest} from the registry does not match its digest "
                              f"(got sha256:{h.hexdigest()}, {got_size} bytes of {size}): refusing it")
        return h.hexdigest()

    def pull(self, digest: str, folder: Path, artifact_type: str = ARTIFACT_TYPE,
             names: tuple[str, ...] = (BUNDLE_NAME, LINEAGE_NAME)) -> Pulled:
        """Fetch the manifest ``digest`` and every layer into ``folder`` (which the caller owns);
        layers go to ``model/<path>`` or one of ``names``."""
        manifest = self.manifest(digest, artifact_type)
        pulled = Pulled(folder, digest, manifest)
        for layer in manifest.get("layers", []):
            title = safe_title((layer.get("annotations") or {}).get(TITLE), names)
            if title in pulled.files:
                raise CheckFailed(f"{self.ref.repo_url}@{digest}: two layers are titled {title!r}")
            blob, size = layer.get("digest", ""), layer.get("size")
            if not _DIGEST.match(blob) or not isinstance(size, int) or size < 0:
                raise CheckFailed(f"{self.ref.repo_url}@{digest}: layer {title!r} has no valid sha256 digest and size")
            pulled.files[title] = (self.download(blob, size, folder / title), size)
        return pulled


def safe_title(title: Any, names: tuple[str, ...] = (BUNDLE_NAME, LINEAGE_NAME)) -> str:
    """A layer title as a relative path that stays inside the output folder, or refuse it."""
    if not isinstance(title, str) or not title:
        raise CheckFailed(f"a layer has no {TITLE} annotation: not an sre-llm model artifact")
    parts = title.split("/")
    if title.startswith("/") or "\\" in title or any(p in ("", ".", "..") for p in parts) or "\0" in title:
        raise CheckFailed(f"layer title {title!r} is not a safe relative path: refusing the artifact")
    if not (title in names or (parts[0] == MODEL_DIR and len(parts) > 1)):
        raise CheckFailed(f"layer title {title!r}: expected {MODEL_DIR}/<path> or one of {', '.join(names)}")
    return title


def _read(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _errors(response: Any) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or response.text[:200]
    except ValueError:
        return response.text[:200].strip() or "(no body)"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
