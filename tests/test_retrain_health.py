"""The loop's own health: a real Prometheus scrapes a real Pushgateway that `sre_llm.retrain.metrics`
pushed to; the rendered PrometheusRule fires for the one rate pushed below its target (and only
for that one), and every panel of the rendered Grafana dashboard runs its query on that Prometheus.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from sre_llm.retrain import metrics, names
from tests.test_collect_live import free_port, http_ok, wait_for

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
MODEL = "sre-remediation-tiny"


def _render(tmp: Path) -> Path:
    spec = tmp / "spec.yaml"
    text = (ROOT / "specs/tiny-cpu.yaml").read_text()
    assert "\n  retrain:\n" in text
    spec.write_text(text.replace("\n  retrain:\n", "\n  retrain:\n    targets: {alert_for: 1s}\n"))
    proc = subprocess.run([str(ROOT / ".venv/bin/sre-llm"), "render", "--out", str(tmp / "rendered"), str(spec)],
                          cwd=tmp, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return tmp / "rendered" / MODEL / "monitoring"


def test_the_packaged_dashboard_template_is_what_the_sdk_builds():
    """Rendering fills a template (no SDK on the render path); the SDK is what builds it:
    `python -m sre_llm.render.dashboard` after changing the panels."""
    from sre_llm.render import dashboard

    assert dashboard.TEMPLATE.read_text(encoding="utf-8") == dashboard.template_text(dashboard.build_template())


def test_dashboard_is_a_grafana_model_with_one_query_per_panel(tmp_path):
    from grafana_foundation_sdk.models.dashboard import Dashboard

    folder = _render(tmp_path)
    data = json.loads((folder / "dashboard.json").read_text())
    board = Dashboard.from_json(data)  # the SDK's own model reads it back
    assert board.uid == f"sre-llm-loop-{MODEL}"
    titles = [p["title"] for p in data["panels"]]
    assert titles[:4] == ["Data collection success rate", "Fine-tuning success rate", "Deployment success rate",
                          "A/B success rate"]
    assert all(len(p["targets"]) == 1 and p["targets"][0]["expr"] for p in data["panels"])
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kust["configMapGenerator"][0]["files"] == ["dashboard.json"]
    assert kust["generatorOptions"]["labels"] == {"grafana_dashboard": "1"}
    if shutil.which("kubectl"):
        built = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False, timeout=60)
        assert built.returncode == 0, built.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(built.stdout)]
        assert sorted(kinds) == ["ConfigMap", "PrometheusRule"]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.slow
@pytest.mark.skipif(not (PROMETHEUS and PUSHGATEWAY),
                    reason="prometheus / prometheus-pushgateway absent (apt-get install prometheus prometheus-pushgateway)")
def test_rule_fires_below_target_and_every_panel_query_runs(tmp_path):
    folder = _render(tmp_path)
    rule = yaml.safe_load((folder / "loop-rules.yaml").read_text())
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    gport, pport = free_port(), free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yml]\n"
        f"scrape_configs:\n- job_name: pushgateway\n  honor_labels: true\n  static_configs:\n"
        f"  - targets: ['127.0.0.1:{gport}']\n")
    check = subprocess.run([shutil.which("promtool") or "true", "check", "rules", str(tmp_path / "rules.yml")],
                           capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: keep it in tmp_path
    procs = [subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{gport}",
                               f"--persistence.file={tmp_path / 'pushgateway.data'}"],
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "pgw.log", "w")),  # noqa: SIM115 - the child holds it
             subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{pport}"],
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prom.log", "w"))]  # noqa: SIM115 - the child holds it
    prom = f"http://127.0.0.1:{pport}"
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{gport}/-/ready"), 30, "pushgateway ready")
        wait_for(lambda: http_ok(f"{prom}/-/ready"), 30, "prometheus ready")
        now = time.time()
        fig = metrics.LoopFigures(
            model=MODEL,
            rates={"sre_llm_data_collection_success_ratio": 1.0, "sre_llm_fine_tuning_success_ratio": 0.5,
                   "sre_llm_deployment_success_ratio": 0.97, "sre_llm_ab_test_success_ratio": 0.93},
            champion_promoted=now - 3600, gates={"0.1.1": {"parameter_accuracy": (0.97, 0.95)}},
            outcomes={"promoted": 1, "refused": 2}, retrain_last=now, p_value=0.02)
        metrics.push(f"127.0.0.1:{gport}", "sre_llm_retrain", fig)

        def firing() -> set[str]:
            alerts = _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
            return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

        wait_for(lambda: "SreLlmFineTuningBelowTarget" in firing(), 60, "the fine-tuning alert to fire")
        time.sleep(2)  # a few more evaluations: the rates at or above target must stay quiet
        assert firing() == {"SreLlmFineTuningBelowTarget"}

        for panel in json.loads((folder / "dashboard.json").read_text())["panels"]:
            expr = panel["targets"][0]["expr"]
            answer = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            assert answer["status"] == "success", (panel["title"], answer)
            assert answer["data"]["result"], f"{panel['title']}: {expr} returned no series"
        age = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode(
            {"query": f'time() - max({names.CHAMPION_PROMOTED}{{model="{MODEL}"}})'}))
        assert 3590 < float(age["data"]["result"][0]["value"][1]) < 3700
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


def test_unreachable_pushgateway_is_a_failed_check():
    from sre_llm.errors import CheckFailed

    with pytest.raises(CheckFailed) as exc:
        metrics.push(f"127.0.0.1:{free_port()}", "sre_llm_retrain", metrics.LoopFigures(model=MODEL, p_value=0.5), timeout=2)
    assert exc.value.exit_code == 1 and "pushgateway 127.0.0.1:" in str(exc.value)
