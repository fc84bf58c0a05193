"""Render ``training.cluster``: a Kubeflow PyTorchJob that runs the same ``sre-llm train`` on N nodes.

Pure: ``list[RenderedFile]`` under ``rendered/<name>/<version>/cluster/``:

- ``configmap.yaml``  the spec and the files training reads, exactly as the local path writes
  them (train.yaml, dataset_info.json, the DeepSpeed config, launcher.env);
- ``pytorchjob.yaml`` Master ×1 + Worker ×(nodes-1), ``nprocPerNode`` = gpus_per_node, so the
  operator sets WORLD_SIZE = nodes × gpus_per_node and each pod's PET_NNODES / PET_NODE_RANK /
  PET_NPROC_PER_NODE / MASTER_ADDR (the job's own master service) / MASTER_PORT;
- ``kustomization.yaml`` so ``kubectl apply -k`` (and ``kubectl kustomize``) take the folder whole.

Each pod: an init container copies the spec in, renders it with the image's sre-llm and refuses
to start when that render differs from the ConfigMap (an image built from another sre-llm would
train something else than was reviewed), then pulls the dataset and the base model by digest with
``sre-llm registry pull --verify``. The ``pytorch`` container (the name the operator looks for)
runs ``sre-llm train --json``; with ``SRE_LLM_LAUNCHER=pytorchjob`` the trainer takes its
rendezvous from the operator's variables instead of launcher.env's (``execute/cluster.py``).
The Master then registers the output and pushes it with ``sre-llm registry push``.
"""

from __future__ import annotations

import io
import posixpath
import re
import shlex

from sre_llm.deploy.yamldoc import _yaml
from sre_llm.render import llamafactory as lf
from sre_llm.render.render import RenderedFile, spec_label
from sre_llm.spec.load import LoadedSpec
from sre_llm.spec.model import ModelRelease

FOLDER = "cluster"
JOB_FILE, CONFIGMAP_FILE = "pytorchjob.yaml", "configmap.yaml"
CONTAINER = "pytorch"  # the operator sets the rendezvous env on, and reads the port of, this container
PORT_NAME = "pytorchjob-port"
WORKSPACE = "/workspace"
FILES_MOUNT = "/etc/sre-llm/job"
SPEC_KEY = "spec.yaml"
LAUNCHER_ENV = {"name": "SRE_LLM_LAUNCHER", "value": "pytorchjob"}
HF_CACHE = f"{WORKSPACE}/.cache/huggingface/hub"  # a hub-named base model is pulled into this cache layout
# The files `sre-llm train` reads from rendered/<name>/<version>/; the ConfigMap carries them.
TRAINING_FILES = ("train.yaml", "dataset_info.json", "launcher.env")


class Block(str):
    """Text rendered as a YAML literal block (``|``): the scripts and files stay readable in review."""


def dump(doc: object, header: str) -> str:
    """yamldoc's byte-stable dump, plus literal blocks and no anchors (each pod is written out whole)."""
    y = _yaml()
    y.representer.add_representer(Block, lambda r, data: r.represent_scalar(
        "tag:yaml.org,2002:str", str(data), style="|" if _literal_ok(data) else None))
    y.representer.ignore_aliases = lambda data: True
    buf = io.StringIO()
    y.dump(doc, buf)
    return header + buf.getvalue()


def _literal_ok(text: str) -> bool:
    # YAML cannot keep trailing spaces or tabs in a literal block; such text stays quoted.
    return text.endswith("\n") and not any(line != line.rstrip() or "\t" in line for line in text.splitlines())


def job_name(spec: LoadedSpec) -> str:
    """``<name>-<version>-<spec digest>``: the same spec applies the same job (``--cluster`` can
    follow it again), a changed spec a new one. At most 47 characters, so the operator's pod and
    service names (``<job>-worker-<n>``) stay DNS labels."""
    meta = spec.release.metadata
    version = re.sub(r"[^a-z0-9]+", "-", meta.version.lower()).strip("-")
    digest = spec.digest.removeprefix("sha256:")[:8]
    head = f"{meta.name}-{version}"[: 47 - 9].rstrip("-")
    return f"{head}-{digest}"


def folder(release: ModelRelease, root: str = "rendered") -> str:
    return f"{lf.release_dir(release, root)}/{FOLDER}"


def output_tag(release: ModelRelease) -> str:
    return f"{release.metadata.version.replace('+', '_')}-trained"


def output_reference(release: ModelRelease) -> str:
    """Where the Master pushes: the spec's repository, tagged ``<version>-trained`` unless it names a tag."""
    out = release.spec.training.cluster.output  # type: ignore[union-attr]
    last = out.rsplit("/", 1)[-1]
    return out if ":" in last else f"{out}:{output_tag(release)}"


def _labels(release: ModelRelease, job: str) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": release.metadata.name,
        "app.kubernetes.io/component": "training",
        "app.kubernetes.io/part-of": "sre-llm",
        "app.kubernetes.io/managed-by": "sre-llm",
        "sre-llm.io/model-version": re.sub(r"[^A-Za-z0-9_.-]", "_", release.metadata.version)[:63],
        "sre-llm.io/job": job,
    }
    labels.update(sorted(release.metadata.labels.items()))
    return labels


def configmap(spec: LoadedSpec, job: str, files: dict[str, str]) -> dict:
    release = spec.release
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{job}-files", "namespace": release.spec.training.cluster.namespace,  # type: ignore[union-attr]
                     "labels": _labels(release, job)},
        "data": {SPEC_KEY: Block(spec.text), **{k: Block(v) for k, v in sorted(files.items())}},
    }


def _q(value: str) -> str:
    return shlex.quote(value)


def _pull(ref: str, into: str, spec_path: str, plain_http: bool) -> list[str]:
    stage = f".pull/{posixpath.basename(into.rstrip('/'))}"
    flags = " --plain-http" if plain_http else ""
    return [
        f"rm -rf {_q(stage)} && sre-llm registry pull {_q(ref)} --out {_q(stage)} --verify --spec {_q(spec_path)}{flags}",
        f"mkdir -p {_q(posixpath.dirname(into) or '.')} && rm -rf {_q(into)} && mv {_q(stage + '/model')} {_q(into)}",
    ]


def fetch_script(spec: LoadedSpec, file_names: list[str]) -> str:
    """The init container: spec in, render checked against the ConfigMap, dataset and base model pulled."""
    release = spec.release
    c = release.spec.training.cluster
    assert c is not None  # noqa: S101 - an invariant for the type checker, not a security check
    label = spec_label(spec.path)
    rendered = lf.release_dir(release)
    lines = ["set -eu", f"cd {WORKSPACE}",
             f"mkdir -p {_q(posixpath.dirname(label) or '.')}",
             f"cp {FILES_MOUNT}/{SPEC_KEY} {_q(label)}",
             f"sre-llm render {_q(label)} > /dev/null",
             f"for f in {' '.join(file_names)}; do",
             (f"  cmp -s {FILES_MOUNT}/$f {_q(rendered)}/$f || {{ echo \"{rendered}/$f: the training image's sre-llm "
              "renders it differently from the sre-llm that rendered this job: build the image from the same commit\" >&2; "
              "exit 2; }"),
             "done"]
    lines += _pull(c.dataset, lf.dataset_dir(release), label, c.plain_http)
    bm = release.spec.base_model
    if c.base_model and bm.path:
        lines += _pull(c.base_model, bm.path.rstrip("/"), label, c.plain_http)
    elif c.base_model and bm.name:
        # A hub id: into the hub cache's layout, so the offline trainer (and preflight) find it by name.
        repo = f"{HF_CACHE}/models--{bm.name.replace('/', '--')}"
        snapshot = bm.revision if bm.revision and re.fullmatch(r"[0-9a-f]{40}", bm.revision) else \
            c.base_model.rsplit("sha256:", 1)[1][:40]
        lines += _pull(c.base_model, f"{repo}/snapshots/{snapshot}", label, c.plain_http)
        lines.append(f"mkdir -p {_q(repo)}/refs && printf %s {snapshot} > {_q(repo + '/refs/' + (bm.revision or 'main'))}")
    return Block("\n".join(lines) + "\n")


def train_script(spec: LoadedSpec, master: bool) -> str:
    """The ``pytorch`` container: the same ``sre-llm train``; on the Master, register and push after."""
    release = spec.release
    label = spec_label(spec.path)
    lines = ["set -eu", f"cd {WORKSPACE}", f"sre-llm train {_q(label)} --json"]
    if master:
        meta = release.metadata
        c = release.spec.training.cluster
        assert c is not None  # noqa: S101 - an invariant for the type checker, not a security check
        runs = f"runs/{meta.name}/{meta.version}"
        flags = " --plain-http" if c.plain_http else ""
        lines += [
            f"run=$(ls -1d {_q(runs)}/*/ | sort | tail -n 1); run=${{run%/}}",
            # The pod's run record as one JSON line of the log: `train --cluster` keeps it in the local run.json.
            ("python3 -c 'import json,sys; print(json.dumps({\"event\": \"run_record\", \"record\": json.load(open(sys.argv[1]))}, "
             "sort_keys=True))' \"$run/run.json\""),
            f"sre-llm registry register {_q(label)} --model \"$run/output\" --run \"$run/run.json\" --json",
            f"sre-llm registry push {_q(meta.version)} -n {_q(meta.name)} --to {_q(output_reference(release))} --json{flags}",
        ]
    return Block("\n".join(lines) + "\n")


def _pod(spec: LoadedSpec, job: str, master: bool, file_names: list[str]) -> dict:
    release = spec.release
    t = release.spec.training
    c = t.cluster
    assert c is not None  # noqa: S101 - an invariant for the type checker, not a security check
    res = c.resources
    limits: dict[str, str] = {"cpu": res.cpu, "memory": res.memory}
    if t.device == "cuda":
        limits[res.gpu_resource] = str(t.distributed.gpus_per_node)
    env: list[dict] = [{"name": "HF_HUB_CACHE", "value": HF_CACHE}]
    if c.registry_secret:
        env += [{"name": "OCI_TOKEN", "valueFrom": {"secretKeyRef": {"name": c.registry_secret, "key": "token"}}},
                {"name": "SRE_LLM_OCI_TOKEN", "value": "env:OCI_TOKEN"}]
    mounts = [{"name": "workspace", "mountPath": WORKSPACE}, {"name": "job-files", "mountPath": FILES_MOUNT, "readOnly": True}]
    volumes: list[dict] = [
        {"name": "workspace", **({"persistentVolumeClaim": {"claimName": c.workspace_pvc}} if master and c.workspace_pvc
                                 else {"emptyDir": {"sizeLimit": c.workspace_size}})},
        {"name": "job-files", "configMap": {"name": f"{job}-files"}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},  # NCCL needs more than the runtime's 64 MiB /dev/shm
    ]
    if c.signing_secret:
        volumes.append({"name": "signing", "secret": {"secretName": c.signing_secret}})
        s = release.spec.signing
        for path in ([s.public_key] if s.public_key else []) + list(s.certificate_chain):
            where = path if path.startswith("/") else posixpath.join(WORKSPACE, path)
            mounts.append({"name": "signing", "mountPath": where, "subPath": posixpath.basename(path), "readOnly": True})
    fetch = {"name": "fetch", "image": c.image, "command": ["/bin/sh", "-c", fetch_script(spec, file_names)],
             "env": list(env), "volumeMounts": mounts,
             "resources": {"requests": {"cpu": res.cpu, "memory": res.memory}, "limits": {"cpu": res.cpu, "memory": res.memory}}}
    main = {
        "name": CONTAINER, "image": c.image, "command": ["/bin/sh", "-c", train_script(spec, master)],
        "env": [LAUNCHER_ENV, *env],
        "ports": [{"name": PORT_NAME, "containerPort": t.distributed.master_port}],
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        "volumeMounts": [*mounts, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    pod: dict = {"serviceAccountName": c.service_account, "initContainers": [fetch], "containers": [main],
                 "volumes": volumes}
    if c.node_selector:
        pod["nodeSelector"] = dict(sorted(c.node_selector.items()))
    if c.tolerations:
        pod["tolerations"] = [tol.model_dump(exclude_none=True) for tol in c.tolerations]
    return {"metadata": {"labels": _labels(release, job)}, "spec": pod}


def pytorch_job(spec: LoadedSpec, job: str, file_names: list[str]) -> dict:
    release = spec.release
    dist = release.spec.training.distributed
    c = release.spec.training.cluster
    assert c is not None  # noqa: S101 - an invariant for the type checker, not a security check
    replicas = {"Master": {"replicas": 1, "restartPolicy": "Never", "template": _pod(spec, job, True, file_names)}}
    if dist.nodes > 1:
        replicas["Worker"] = {"replicas": dist.nodes - 1, "restartPolicy": "Never",
                              "template": _pod(spec, job, False, file_names)}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": job, "namespace": c.namespace, "labels": _labels(release, job)},
        "spec": {
            "nprocPerNode": str(dist.gpus_per_node),
            # Pods stay after the end (their logs are the record) until the TTL removes the job.
            "runPolicy": {"backoffLimit": c.backoff_limit, "cleanPodPolicy": "None",
                          "ttlSecondsAfterFinished": c.ttl_seconds_after_finished},
            "pytorchReplicaSpecs": replicas,
        },
    }


def render_cluster(spec: LoadedSpec, release_files: list[RenderedFile], root: str = "rendered") -> list[RenderedFile]:
    """The cluster/ folder of a release with ``training.cluster``; nothing without it.
    ``release_files`` are the release's rendered files: the ConfigMap carries the ones training reads."""
    release = spec.release
    if release.spec.training.cluster is None:
        return []
    wanted = set(TRAINING_FILES) | ({lf.deepspeed_file(release)} if lf.deepspeed_file(release) else set())
    carried = {posixpath.basename(f.path): f.text for f in release_files if posixpath.basename(f.path) in wanted}
    job = job_name(spec)
    header = f"# Generated by sre-llm from {spec_label(spec.path)} — do not edit.\n"
    base = folder(release, root)
    names = sorted(carried)
    docs = {
        CONFIGMAP_FILE: configmap(spec, job, carried),
        JOB_FILE: pytorch_job(spec, job, names),
        "kustomization.yaml": {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                               "resources": [CONFIGMAP_FILE, JOB_FILE]},
    }
    return [RenderedFile(f"{base}/{name}", dump(doc, header)) for name, doc in docs.items()]
