"""Training on a cluster through Kubeflow: the rendered PyTorchJob (2 nodes × 8 GPUs → world size 16,
the rendezvous from the operator's own variables), validated against the real PyTorchJob CRD and
built by ``kubectl kustomize``; ``sre-llm train --cluster`` driving the real kubectl against a local
server replaying Kubernetes API responses (tests/fixtures/kubernetes/api.json), success and failure;
and a missing kubectl (exit 2)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

from sre_llm import api
from sre_llm.deploy.schemacheck import unknown_fields
from sre_llm.errors import CheckFailed, SpecInvalid
from sre_llm.execute import cluster as cl
from sre_llm.execute.progress import JsonReporter
from sre_llm.spec.load import load_spec

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
SPEC = FIX / "specs" / "cluster-kubeflow.yaml"
SPEC_REL = "specs/cluster-kubeflow.yaml"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (scripts/setup-system.sh installs it)")


def _cluster_docs(spec: Path = SPEC) -> dict[str, dict]:
    files = [f for f in api.render_files([str(spec)]) if "/cluster/" in f.path]
    return {Path(f.path).name: yaml.safe_load(f.text) for f in files}


def operator_env(job: dict, replica: str, index: int) -> dict[str, str]:
    """What the Training Operator v1.9 sets in a PyTorchJob's containers (pkg/controller.v1/pytorch/envvar.go:
    WORLD_SIZE = all replicas × nprocPerNode, RANK = PET_NODE_RANK = index, +1 for workers, MASTER_ADDR the
    master's service, MASTER_PORT the `pytorchjob-port` of the master's `pytorch` container)."""
    spec = job["spec"]
    replicas = sum(r["replicas"] for r in spec["pytorchReplicaSpecs"].values())
    master = spec["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"]
    (port,) = [p["containerPort"] for c in master if c["name"] == "pytorch" for p in c["ports"] if p["name"] == "pytorchjob-port"]
    rank = index + (1 if replica == "Worker" else 0)
    container = spec["pytorchReplicaSpecs"][replica]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    env.update(MASTER_ADDR=f"{job['metadata']['name']}-master-0", MASTER_PORT=str(port),
               WORLD_SIZE=str(replicas * int(spec["nprocPerNode"])), RANK=str(rank), PET_NODE_RANK=str(rank),
               PET_NPROC_PER_NODE=spec["nprocPerNode"], PET_NNODES=str(replicas))
    return env


# ── rendering ───────────────────────────────────────────────────────────────────────────────────


def test_two_nodes_of_eight_gpus_render_world_size_16_and_the_jobs_own_rendezvous() -> None:
    docs = _cluster_docs()
    assert sorted(docs) == ["configmap.yaml", "kustomization.yaml", "pytorchjob.yaml"]
    job = docs["pytorchjob.yaml"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Master": 1, "Worker": 1}
    assert job["spec"]["nprocPerNode"] == "8"
    text = json.dumps(job)
    assert "MASTER_ADDR" not in text and "10.0.0.1" not in text and "127.0.0.1" not in text
    for kind in replicas:
        (container,) = replicas[kind]["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["ports"] == [{"name": "pytorchjob-port", "containerPort": 29500}]
        assert "sre-llm train tests/fixtures/specs/cluster-kubeflow.yaml --json" in container["command"][2]

    launcher = {"FORCE_TORCHRUN": "1", "NNODES": "2", "NPROC_PER_NODE": "8", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    worker = cl.launcher_from_job(launcher, operator_env(job, "Worker", 0))
    name = job["metadata"]["name"]
    assert worker == {"FORCE_TORCHRUN": "1", "NNODES": "2", "NODE_RANK": "1", "NPROC_PER_NODE": "8",
                      "MASTER_ADDR": f"{name}-master-0", "MASTER_PORT": "29500"}
    env = operator_env(job, "Master", 0)
    assert env["WORLD_SIZE"] == "16"
    assert int(worker["NNODES"]) * int(worker["NPROC_PER_NODE"]) == 16
    assert cl.launcher_from_job(launcher, env)["NODE_RANK"] == "0"
    # Outside such a pod launcher.env is used as rendered.
    assert cl.launcher_from_job(launcher, {"MASTER_ADDR": "x"}) == launcher


def test_the_configmap_carries_what_the_local_path_writes() -> None:
    files = {Path(f.path).name: f.text for f in api.render_files([str(SPEC)]) if "/cluster/" not in f.path and "/1.0.0/" in f.path}
    data = _cluster_docs()["configmap.yaml"]["data"]
    assert data["spec.yaml"] == SPEC.read_text()
    for name in ("train.yaml", "dataset_info.json", "ds_z3_config.json", "launcher.env"):
        assert data[name] == files[name], name
    assert json.loads(data["ds_z3_config.json"])["zero_optimization"]["stage"] == 3
    fetch = _cluster_docs()["pytorchjob.yaml"]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["initContainers"][0]
    script = fetch["command"][2]
    assert "sre-llm registry pull oci://registry.example.com/sre-llm/datasets/sre-remediation@sha256:2222" in script
    assert script.count("--verify --spec tests/fixtures/specs/cluster-kubeflow.yaml") == 2
    assert "models--Qwen--Qwen2-7B/snapshots/" in script


def test_the_job_validates_against_the_pytorchjob_crd() -> None:
    schema = json.loads((FIX / "schemas/kubeflow.org/pytorchjob_v1.json").read_text())
    job = _cluster_docs()["pytorchjob.yaml"]
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(job)]
    assert errors == []
    assert unknown_fields(job, schema) == []
    # The check can fail: a misplaced field and a wrong type are both caught.
    bad = copy.deepcopy(job)
    bad["spec"]["nprocPerNodes"] = "8"
    bad["spec"]["runPolicy"]["backoffLimit"] = "zero"
    assert unknown_fields(bad, schema) == ["spec.nprocPerNodes"]
    assert [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(bad)] == ["'zero' is not of type 'integer'"]


@needs_kubectl
def test_kubectl_kustomize_builds_the_folder(tmp_path: Path) -> None:
    api.render([str(SPEC)], base=tmp_path)
    folder = tmp_path / "rendered/variant-cluster-kubeflow/1.0.0/cluster"
    out = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=True).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out))
    assert kinds == ["ConfigMap", "PyTorchJob"]


def test_no_cluster_section_renders_no_cluster_folder() -> None:
    assert not [f for f in api.render_files([str(ROOT / "specs" / "tiny-cpu.yaml")]) if "/cluster/" in f.path]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("image", "registry.example.com/sre-llm/train:0.2.0",
     "spec.training.cluster.image: must be a container image pinned by digest"),
    ("dataset", "oci://registry.example.com/sre-llm/datasets/x:latest",
     "spec.training.cluster.dataset: must be pinned by digest"),
    ("output", "oci://registry.example.com/sre-llm/models/x@sha256:" + "4" * 64,
     "spec.training.cluster.output: must be oci://HOST[:PORT]/REPOSITORY[:TAG] (no digest"),
])
def test_unpinned_references_are_refused(tmp_path: Path, field: str, value: str, message: str) -> None:
    doc = yaml.safe_load(SPEC.read_text())
    doc["spec"]["training"]["cluster"][field] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SpecInvalid) as err:
        load_spec(path)
    assert any(message in str(d) for d in err.value.diagnostics), str(err.value)


# ── sre-llm train --cluster against replayed API responses ────────────────────────────────────


class KubeReplay:
    """A local HTTP server answering kubectl with recorded Kubernetes API responses; the job's
    states come in order (the last one repeats) and the Master's log is served as recorded."""

    def __init__(self, job: dict, states: list[list[dict]], log: str):
        recorded = json.loads((FIX / "kubernetes" / "api.json").read_text())["responses"]
        fill = {"$NS": job["metadata"]["namespace"], "$JOB": job["metadata"]["name"],
                "$IMAGE": job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["image"]}

        def sub(text: str) -> str:
            for k, v in fill.items():
                text = text.replace(k, v)
            return text

        self.responses = {sub(k): json.loads(sub(json.dumps(v))) for k, v in recorded.items()}
        self.job_path = sub("GET /apis/kubeflow.org/v1/namespaces/$NS/pytorchjobs/$JOB")
        self.log_path = sub("GET /api/v1/namespaces/$NS/pods/$JOB-master-0/log")
        self.states, self.log, self.created, self.requests = list(states), log, None, []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                url = urlsplit(self.path)
                key = f"{self.command} {url.path}"
                replay.requests.append((key, parse_qs(url.query), self.headers.get("Authorization")))
                status, payload = replay.answer(key, body)
                raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, key: str, body: bytes) -> tuple[int, object]:
        if key == self.job_path and self.created is not None:
            conditions = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return 200, {**self.created, "status": {"conditions": conditions}}
        if key == self.log_path:
            return 200, self.log
        hit = self.responses.get(key)
        if hit is None:
            return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        if hit["body"] == "echo":  # what the API server does on create: the object, with its metadata
            obj = json.loads(body)
            obj["metadata"].update(uid="6c1f0a9e-2b7d-4d55-9a3e-1f2e3d4c5b6a", resourceVersion="1001",
                                   creationTimestamp="2025-01-10T09:01:00Z", generation=1)
            if obj["kind"] == "PyTorchJob":
                self.created = obj
            return hit["status"], obj
        return hit["status"], hit["body"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cond(kind: str, reason: str, message: str) -> dict:
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastUpdateTime": "2025-01-10T09:05:00Z", "lastTransitionTime": "2025-01-10T09:05:00Z"}


def _project(tmp_path: Path, replay: KubeReplay) -> dict[str, str]:
    (tmp_path / "specs").mkdir()
    shutil.copy(SPEC, tmp_path / SPEC_REL)
    kube = tmp_path / "kube"
    kube.mkdir()
    (kube / "config").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "replay",
        "clusters": [{"name": "replay", "cluster": {"server": replay.url}}],
        "contexts": [{"name": "replay", "context": {"cluster": "replay", "user": "ci"}}],
        "users": [{"name": "ci", "user": {"token": "replay-token"}}]}))
    return {**os.environ, "KUBECONFIG": str(kube / "config"), "HOME": str(kube)}


CREATED = _cond("Created", "PyTorchJobCreated", "PyTorchJob ml-training/job is created.")
RUNNING = _cond("Running", "PyTorchJobRunning", "PyTorchJob ml-training/job is running.")


@needs_kubectl
def test_train_cluster_applies_follows_and_exits_0_on_success(tmp_path: Path) -> None:
    job = _cluster_docs()["pytorchjob.yaml"]
    log = "\n".join([
        json.dumps({"event": "start", "run_id": "20250110-090500-ab12"}),
        json.dumps({"event": "step", "step": 10, "total": 20, "loss": 1.5, "lr": 0.0002, "epoch": 0.5}),
        json.dumps({"event": "eval", "step": 20, "total": 20, "eval_loss": 0.9}),
        json.dumps({"ok": True, "event": "result", "run": "runs/x/1.0.0/20250110-090500-ab12", "status": "succeeded"}),
        json.dumps({"event": "run_record", "record": {"run_id": "20250110-090500-ab12", "status": "succeeded",
                                                      "launcher_env": {"NODE_RANK": "0", "NNODES": "2"}}}),
        "variant-cluster-kubeflow 1.0.0: pushed", ""])
    replay = KubeReplay(job, [[CREATED, RUNNING], [CREATED, RUNNING, _cond("Succeeded", "PyTorchJobSucceeded",
                                                                               "PyTorchJob ml-training/job successfully completed.")]], log)
    try:
        env = _project(tmp_path, replay)
        done = subprocess.run([sys.executable, "-m", "sre_llm", "train", SPEC_REL, "--cluster", "--json"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        replay.close()
    assert done.returncode == 0, done.stderr + done.stdout
    events = [json.loads(line) for line in done.stdout.splitlines()]
    states = [e["state"] for e in events if e.get("event") == "job"]
    assert states == ["Applied", "Running", "Succeeded"]
    assert [e["event"] for e in events if e["event"] in ("step", "eval")] == ["step", "eval"]
    assert events[-1]["ok"] is True and events[-1]["status"] == "succeeded" and events[-1]["job"] == job["metadata"]["name"]
    record = json.loads((tmp_path / events[-1]["run"] / "run.json").read_text())
    assert record["status"] == "succeeded" and record["cluster"]["world_size"] == 16
    assert record["pod_run"]["launcher_env"] == {"NODE_RANK": "0", "NNODES": "2"}
    keys = [k for k, _, _ in replay.requests]
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    assert f"POST /api/v1/namespaces/{ns}/configmaps" in keys
    assert f"POST /apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs" in keys
    (log_query,) = {json.dumps(q, sort_keys=True) for k, q, _ in replay.requests if k.endswith(f"{name}-master-0/log")}
    assert json.loads(log_query)["container"] == ["pytorch"] and json.loads(log_query)["follow"] == ["true"]
    # kubectl keeps the bearer token off plain HTTP: the replay server never sees it.
    assert {auth for _, _, auth in replay.requests} == {None}


@needs_kubectl
def test_train_cluster_raises_with_the_reason_when_the_job_fails(tmp_path: Path) -> None:
    job = _cluster_docs()["pytorchjob.yaml"]
    log = "\n".join([
        json.dumps({"event": "start", "run_id": "20250110-090500-ab12"}),
        "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error",
        json.dumps({"ok": False, "error": {"code": "check_failed",
                                           "message": "training failed: llamafactory-cli exited with 1"}}), ""])
    failed = _cond("Failed", "PyTorchJobFailed", "PyTorchJob ml-training/job is failed because 1 Master replica(s) failed.")
    replay = KubeReplay(job, [[CREATED], [CREATED, RUNNING], [CREATED, RUNNING, failed]], log)
    try:
        env = _project(tmp_path, replay)
        old = dict(os.environ)
        os.environ.update(KUBECONFIG=env["KUBECONFIG"], HOME=env["HOME"])
        out = __import__("io").StringIO()
        try:
            with pytest.raises(CheckFailed) as err:
                cl.submit(str(tmp_path / SPEC_REL), JsonReporter(out), base=tmp_path, poll_s=0.05)
        finally:
            os.environ.clear()
            os.environ.update(old)
    finally:
        replay.close()
    message = str(err.value)
    assert message.startswith(f"training job ml-training/{job['metadata']['name']} failed: training failed: "
                              "llamafactory-cli exited with 1")
    assert "NCCL error" in message
    states = [json.loads(line).get("state") for line in out.getvalue().splitlines()]
    assert [s for s in states if s] == ["Applied", "Created", "Running", "Failed"]
    (run,) = (tmp_path / "runs/variant-cluster-kubeflow/1.0.0").iterdir()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert [c["type"] for c in record["conditions"]] == ["Created", "Running", "Failed"]


def test_train_cluster_without_kubectl_exits_2(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    shutil.copy(SPEC, tmp_path / SPEC_REL)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([sys.executable, "-m", "sre_llm", "train", SPEC_REL, "--cluster"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "kubectl not found on PATH" in done.stderr
