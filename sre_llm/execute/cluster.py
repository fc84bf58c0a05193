"""``sre-llm train SPEC --cluster``: apply the rendered PyTorchJob with kubectl and follow it to its end.

kubectl rather than the API over httpx: kubectl already does what a cluster's users configured
(kubeconfig contexts, exec credential plugins for EKS/GKE/AKS, OIDC, client certificates, proxies),
``apply -k`` builds the same kustomization a reviewer ran ``kubectl kustomize`` on, and
``logs -f`` streams with reconnects; an HTTP client would re-implement all of it. kubectl is the
one subprocess here, each call bounded by ``--request-timeout``.

Following: the job's conditions are polled (``Created``, ``Running``, ``Restarting``,
``Succeeded``, ``Failed``); once the Master runs, its ``pytorch`` container's log is streamed to
``runs/<name>/<version>/<run-id>/cluster.log`` and the ``sre-llm train --json`` events in it are
relayed, so ``--json`` prints the same step/eval events as a local run. The exit status is the
job's: 0 Succeeded, 1 Failed (with the operator's reason and the last lines of the log).

In the pod, :func:`launcher_from_job` gives LLaMA Factory's torchrun the rendezvous the
operator set (the job's own master service), not launcher.env's fixed address.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sre_llm.errors import BadInput, CheckFailed, SreLlmError
from sre_llm.execute import runs
from sre_llm.execute.progress import JsonReporter, LogTail, Reporter

GATE = "SRE_LLM_LAUNCHER"
DONE = ("Succeeded", "Failed")
REQUEST_TIMEOUT = "30s"
TAIL_LINES = 25


class Detached(SreLlmError):
    """Ctrl-C while following: the job keeps running in the cluster (exit 130)."""

    exit_code = 130
    code = "interrupted"


def launcher_from_job(launcher: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """launcher.env with the PyTorchJob operator's rendezvous, when running in such a pod.

    Only with ``SRE_LLM_LAUNCHER=pytorchjob`` (the rendered job sets it) and a distributed
    launcher: NNODES, NODE_RANK and NPROC_PER_NODE come from PET_NNODES / PET_NODE_RANK /
    PET_NPROC_PER_NODE, MASTER_ADDR / MASTER_PORT as the operator set them.
    """
    if environ.get(GATE) != "pytorchjob" or not launcher:
        return dict(launcher)
    names = {"NNODES": "PET_NNODES", "NODE_RANK": "PET_NODE_RANK", "NPROC_PER_NODE": "PET_NPROC_PER_NODE",
             "MASTER_ADDR": "MASTER_ADDR", "MASTER_PORT": "MASTER_PORT"}
    missing = sorted(v for v in names.values() if not environ.get(v))
    if missing:
        raise BadInput(f"{GATE}=pytorchjob but the Training Operator did not set {', '.join(missing)}: "
                       "run this only in a PyTorchJob's `pytorch` container")
    return {**launcher, "FORCE_TORCHRUN": "1", **{k: environ[v] for k, v in names.items()}}


def find_kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        raise BadInput("kubectl not found on PATH: `sre-llm train --cluster` applies the job with kubectl; install it "
                       "(https://kubernetes.io/docs/tasks/tools/) and point KUBECONFIG at the cluster, or train here "
                       "without --cluster")
    return found


class Kubectl:
    """kubectl calls, each one bounded; a failed call is a CheckFailed naming the command and kubectl's words."""

    def __init__(self, binary: str, namespace: str):
        self.binary, self.namespace = binary, namespace

    def argv(self, *args: str) -> list[str]:
        return [self.binary, f"--request-timeout={REQUEST_TIMEOUT}", "-n", self.namespace, *args]

    def run(self, *args: str) -> str:
        try:
            done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)  # noqa: S603 - argv list, no shell; the program is sre-llm's own choice
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"kubectl {' '.join(args)}: no answer in 120 s") from None
        if done.returncode != 0:
            words = (done.stderr or done.stdout).strip().splitlines()
            raise CheckFailed(f"kubectl {' '.join(args)} failed ({done.returncode}): {' '.join(words[-3:]) or 'no output'}")
        return done.stdout

    def get_json(self, *args: str) -> dict[str, Any]:
        text = self.run("get", *args, "-o", "json")
        try:
            return json.loads(text)
        except ValueError:
            raise CheckFailed(f"kubectl get {' '.join(args)}: not JSON: {text[:200]!r}") from None

    def follow_logs(self, pod: str, container: str, log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(self.argv("logs", "-f", pod, "-c", container), stdout=out,  # noqa: S603 - argv list, no shell; the program is sre-llm's own choice
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def job_state(job: dict[str, Any]) -> tuple[str, str, str]:
    """(type, reason, message) of the job's latest true condition; ``Pending`` before the operator wrote one."""
    conditions = [c for c in (job.get("status") or {}).get("conditions") or [] if str(c.get("status")) == "True"]
    if not conditions:
        return "Pending", "", ""
    last = conditions[-1]
    return str(last.get("type", "")), str(last.get("reason", "")), str(last.get("message", ""))


def _relay(reporter: Reporter, tail: LogTail, seen: dict[str, Any]) -> None:
    """The pod's ``sre-llm train --json`` events, as this run's own (step/eval as trainer rows)."""
    for event in tail.read():
        kind = event.get("event")
        if kind == "step":
            reporter.rows([{"current_steps": event.get("step"), "total_steps": event.get("total"), "loss": event.get("loss"),
                            "lr": event.get("lr"), "epoch": event.get("epoch"), "elapsed_time": event.get("elapsed"),
                            "remaining_time": event.get("eta")}])
        elif kind == "eval":
            reporter.rows([{"current_steps": event.get("step"), "total_steps": event.get("total"),
                            "eval_loss": event.get("eval_loss")}])
        elif kind == "run_record":
            seen["pod_record"] = event.get("record")
        elif event.get("ok") is False:
            seen["pod_error"] = (event.get("error") or {}).get("message")
        elif kind == "end":
            seen["pod_end"] = {k: v for k, v in event.items() if k != "event"}


def _event(reporter: Reporter, info: dict[str, Any], text: str) -> None:
    if isinstance(reporter, JsonReporter):
        reporter.stream.write(json.dumps({"event": "job", **info}, sort_keys=True) + "\n")
        reporter.stream.flush()
    else:
        reporter.note(text)


def submit(spec: str, reporter: Reporter, base: Path = Path("."), poll_s: float = 5.0,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Apply the spec's rendered job, follow it, return the local run record; raise CheckFailed when it fails."""
    from sre_llm import api
    from sre_llm.render import kubeflow

    (loaded,) = api.validate([spec])
    release = loaded.release
    cluster = release.spec.training.cluster
    if cluster is None:
        raise BadInput(f"{spec}: training.cluster is not set: add it (docs/cluster-training.md) or train here without --cluster")
    binary = find_kubectl()
    if api.render([spec], check=True, base=base).drift:
        api.render([spec], base=base)
        reporter.note(f"rendered files for {spec} were out of date: re-rendered")
    folder = base / kubeflow.folder(release)
    job = kubeflow.job_name(loaded)
    kube = Kubectl(binary, cluster.namespace)
    meta, dist = release.metadata, release.spec.training.distributed

    run_dir = runs.create_run_dir(base, meta.name, meta.version)
    log = run_dir / "cluster.log"
    log.touch()
    started = time.time()
    gpus = 0 if release.spec.training.device == "cpu" else dist.nodes * dist.gpus_per_node
    record: dict[str, Any] = {
        "run_id": run_dir.name, "release": {"name": meta.name, "version": meta.version},
        "spec": {"path": spec, "digest": loaded.digest},
        "rendered": {"dir": runs.rel(folder, base)},
        "cluster": {"engine": cluster.engine, "kind": "PyTorchJob", "namespace": cluster.namespace, "job": job,
                    "image": cluster.image, "world_size": dist.nodes * dist.gpus_per_node,
                    "output": kubeflow.output_reference(release)},
        "resources": {"device": release.spec.training.device, "nodes": dist.nodes,
                      "gpus_per_node": dist.gpus_per_node, "gpus": gpus},
        "log": str(log), "started_at": runs.iso(started), "ended_at": None, "duration_s": None,
        "status": "submitting", "conditions": [], "exit_code": None,
    }
    runs.write_record(run_dir, record)
    reporter.start({"run_id": run_dir.name, "run_dir": str(run_dir), "log": str(log), "job": job,
                    "namespace": cluster.namespace})
    applied = kube.run("apply", "-k", str(folder)).strip().splitlines()
    _event(reporter, {"state": "Applied", "job": job, "namespace": cluster.namespace, "objects": applied},
           f"applied: {', '.join(applied)}")
    record["status"] = "submitted"
    runs.write_record(run_dir, record)

    master = f"{job}-master-0"
    tail, seen = LogTail(log), {}
    follower: subprocess.Popen | None = None
    last = None
    try:
        while True:
            state, reason, message = job_state(kube.get_json("pytorchjob", job))
            if state != last:
                last = state
                record["conditions"].append({"type": state, "reason": reason, "message": message, "seen_at": runs.iso(time.time())})
                record["status"] = state.lower()
                runs.write_record(run_dir, record)
                _event(reporter, {"state": state, "reason": reason, "message": message, "job": job},
                       f"job {cluster.namespace}/{job}: {state}" + (f" ({message})" if message else ""))
            if state in ("Running", *DONE) and (follower is None or follower.poll() not in (None, 0)):
                follower = kube.follow_logs(master, kubeflow.CONTAINER, log)
            _relay(reporter, tail, seen)
            if state in DONE:
                break
            sleep(poll_s)
        if follower is not None:
            try:
                follower.wait(timeout=30)
            except subprocess.TimeoutExpired:
                follower.terminate()
                follower.wait()
        _relay(reporter, tail, seen)
    except KeyboardInterrupt:
        if follower is not None and follower.poll() is None:
            follower.terminate()
            follower.wait()
        _finish(record, run_dir, started, "detached", None, seen)
        raise Detached(f"stopped following; the job {cluster.namespace}/{job} keeps running: follow it again with "
                       f"`sre-llm train {spec} --cluster` (the same spec applies the same job)") from None

    if state == "Failed":
        _finish(record, run_dir, started, "failed", 1, seen)
        reporter.end({"status": "failed", "job": job, "reason": reason, "run_dir": str(run_dir)})
        why = seen.get("pod_error") or message or reason or "no reason given"
        from sre_llm.execute.process import tail as tail_lines

        raise CheckFailed("\n".join(
            [f"training job {cluster.namespace}/{job} failed: {why}", f"last lines of {master}:"]
            + ["  " + line for line in tail_lines(log, TAIL_LINES)] + [f"full log: {log}"]))
    _finish(record, run_dir, started, "succeeded", 0, seen)
    reporter.end({"status": "succeeded", "job": job, "run_dir": str(run_dir), "output": record["cluster"]["output"]})
    return record


def _finish(record: dict[str, Any], run_dir: Path, started: float, status: str, code: int | None,
            seen: dict[str, Any]) -> None:
    ended = time.time()
    record.update(status=status, exit_code=code, ended_at=runs.iso(ended), duration_s=round(ended - started, 2))
    # As a local run: wall clock × GPUs held (what `sre-llm plan` prices the next run from).
    record["gpu_hours"] = round((ended - started) / 3600 * record["resources"]["gpus"], 4)
    if seen.get("pod_record") is not None:
        record["pod_run"] = seen["pod_record"]  # the Master's own run.json, as it wrote it
    runs.write_record(run_dir, record)
