"""The serving pod's pull-and-verify step, run as the rendered manifest says, against a real OCI
registry (Debian's docker-registry on 127.0.0.1).

A GitOps repo registers, signs and pushes versions; ``render`` writes the Knative Service; the
test runs the exact command of the init container (cluster with kubernetes.podspec-init-containers)
or of the gateway container (without it) from the venv. A good artifact lands where vLLM's
``--model`` points and the gateway then listens; a blob tampered in the registry, an unsigned
artifact and one signed by a key the spec does not pin (even with that key in the signers
ConfigMap) exit 1, leave nothing in the models folder, and the gateway never listens.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from oci_support import REGISTRY, Server, free_port
from registry_support import (
    flip_byte,
    make_key,
    make_model,
    make_repo,
    sre,
    write_metrics,
)

from sre_llm import api, signing
from sre_llm.render import pod

pytestmark = pytest.mark.skipif(REGISTRY is None, reason="docker-registry absent (apt-get install docker-registry)")
BIN = str(Path(sys.executable).parent)  # the venv: sre-llm as the image has it


class World:
    def __init__(self, tmp: Path):
        (tmp / "registry").mkdir()
        self.server = Server(tmp / "registry")
        self.repo = make_repo(tmp)
        self.tmp = tmp
        self.where = f"oci://{self.server.host}/models/demo"
        self.pinned = signing.fingerprint((self.repo / "keys" / "signing.pub.pem").read_bytes())
        make_key(self.repo / "keys" / "foreign.pem", self.repo / "keys" / "foreign.pub.pem")
        self.pushed: dict[str, str] = {}

    def spec_text(self, version: str, features: tuple[str, ...] = ()) -> str:
        text = (self.repo / "specs" / "demo.yaml").read_text()
        text = re.sub(r"(?m)^  version: .*$", f"  version: {version}", text)
        self.pod = self.tmp / f"pod-{version}-{len(features)}"
        return text.split("  signing:\n")[0] + (
            "  deployment:\n    gpus: 0\n"
            f"    gateway_port: {free_port()}\n"
            f"    model_mount_path: {self.pod}/models\n"
            f"    pod:\n      knative_features: [{', '.join(features)}]\n"
            f"    artifact:\n      repository: {self.where}\n      signers_path: {self.pod}/signers\n"
            "  signing:\n" + text.split("  signing:\n")[1]
        )

    def release(self, version: str, *, sign_with: str | None = "signing", tamper: bool = False) -> None:
        spec = self.repo / "specs" / "demo.yaml"
        spec.write_text(re.sub(r"(?m)^  version: .*$", f"  version: {version}", spec.read_text()))
        seed = int(version.replace(".", ""))
        out = sre("registry", "register", "specs/demo.yaml", "--model", str(make_model(self.tmp / f"m-{version}", seed)),
                  "--metrics", str(write_metrics(self.tmp / "eval.json")), cwd=self.repo)
        assert out.returncode == 0, out.stderr
        if sign_with:
            out = sre("registry", "sign", version, "--key", f"file:keys/{sign_with}.pem",
                      "--public-key", f"keys/{sign_with}.pub.pem", cwd=self.repo)
            assert out.returncode == 0, out.stderr
        out = sre("registry", "push", version, "--to", self.where, "--json", cwd=self.repo)
        assert out.returncode == 0, out.stderr
        import json

        self.pushed[version] = json.loads(out.stdout)["digest"]
        if tamper:  # a model file's blob changed in the registry's own storage
            blob = next(b for b in sorted((self.tmp / "registry" / "storage").rglob("data"))
                        if b.stat().st_size == 300_000 and _seeded(b, seed))
            flip_byte(blob)

    def render(self, version: str, features: tuple[str, ...] = (), signer: str = "signing") -> tuple[dict, str]:
        """The rendered Service of ``version`` (as `sre-llm render` in the repo), with the signers
        ConfigMap's content (``signer``'s public key) and the empty models volume in place."""
        path = self.repo / "specs" / f"pod-{version}.yaml"
        path.write_text(self.spec_text(version, features).replace(
            "  signing:\n", "  signing:\n    trusted_keys:\n      - " + self.pinned + "\n", 1))
        with contextlib.chdir(self.repo):
            files = api.render_files([str(path.relative_to(self.repo))])
        text = next(f.text for f in files if f.path.endswith("/k8s/serving.yaml"))
        (self.pod / "models").mkdir(parents=True)
        (self.pod / "signers").mkdir()
        shutil.copy(self.repo / "keys" / f"{signer}.pub.pem", self.pod / "signers" / pod.PUBLIC_KEY_FILE)
        return yaml.safe_load(text), text


def _seeded(blob: Path, seed: int) -> bool:
    import random

    return blob.read_bytes()[:64] == random.Random(seed).randbytes(300_000)[:64]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("pod-pull"))
    w.release("1.0.0")
    w.release("1.0.1", sign_with=None)
    w.release("1.0.2", sign_with="foreign")
    w.release("1.0.3", tamper=True)
    yield w
    w.server.stop()


def _run(argv: list[str], container: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e and e["name"] != "HOME"})
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _containers(service: dict) -> dict[str, dict]:
    spec = service["spec"]["template"]["spec"]
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def _served(service: dict) -> Path:
    args = _containers(service)["vllm"]["args"]
    return Path(args[args.index("--model") + 1])


def test_init_container_pulls_by_digest_and_verifies(world):
    service, text = world.render("1.0.0", ("kubernetes.podspec-init-containers",))
    c = _containers(service)
    script = c["pull"]["command"][2]
    assert f"{world.where}@{world.pushed['1.0.0']}" in script  # by the digest the index records
    assert [line for line in text.splitlines() if line.startswith("# warning: ") and "image" not in line] == []
    assert c["vllm"]["command"][:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]  # no wait: init ran
    assert "kubernetes.podspec-init-containers" in text.splitlines()[1]
    out = _run(c["pull"]["command"], c["pull"])
    assert out.returncode == 0, out.stderr
    model = _served(service)
    assert sorted(p.name for p in model.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                       "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert (model.parent / pod.MARKER).is_file()
    again = _run(c["pull"]["command"], c["pull"])  # a restarted pod finds the verified folder and moves on
    assert again.returncode == 0 and again.stderr == ""


def test_gateway_pulls_first_then_listens(world):
    service, _ = world.render("1.0.0")
    c = _containers(service)
    assert "initContainers" not in service["spec"]["template"]["spec"]
    gateway = c["gateway"]
    port = gateway["ports"][0]["containerPort"]
    proc = subprocess.Popen([*gateway["command"], *gateway["args"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    try:
        deadline, health = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
                break
            time.sleep(0.2)
        assert health == 200, proc.stdout.read().decode() if proc.poll() is not None else "gateway not up"
        assert (_served(service) / "adapter_model.safetensors").is_file()  # the pull came first
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503  # no vLLM yet
    finally:
        proc.terminate()
        proc.wait(10)
    wait = c["vllm"]["command"][2]
    assert wait.startswith(f"until [ -f {_served(service).parent}/{pod.MARKER} ]; do sleep 2; done\nexec python3 -m vllm")


@pytest.mark.parametrize("version, signer, reason", [
    ("1.0.3", "signing", "from the registry does not match its digest"),  # the registry served bytes whose digest is not the manifest's
    ("1.0.1", "signing", "unsigned: the artifact of demo-model 1.0.1 carries no signature bundle"),
    ("1.0.2", "foreign", "does not pin (trusted: sha256:"),  # the ConfigMap swapped for the foreign key
], ids=["tampered", "unsigned", "foreign"])
@pytest.mark.parametrize("mode", ["init", "gateway"])
def test_refused_artifact_exits_1_and_leaves_nothing(world, version, signer, reason, mode):
    features = ("kubernetes.podspec-init-containers",) if mode == "init" else ()
    service, _ = world.render(version, features, signer)
    c = _containers(service)
    argv = c["pull"]["command"] if mode == "init" else [*c["gateway"]["command"], *c["gateway"]["args"]]
    out = _run(argv, c["pull" if mode == "init" else "gateway"])
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert reason in out.stderr
    served = _served(service).parent
    assert not served.exists()  # vLLM's marker never appears: it keeps waiting, the pod is never ready
    assert [p.name for p in served.parent.iterdir()] == [] if served.parent.exists() else True
