"""README figures come from stamped files that scripts wrote (`make demo`, `make bench`)."""

from __future__ import annotations

import json
from pathlib import Path

from sre_llm import figures

ROOT = Path(__file__).resolve().parent.parent


def test_readme_quotes_the_recorded_figures() -> None:
    assert (ROOT / "docs/figures/demo.json").is_file(), "run `make demo`: it records docs/figures/demo.json"
    assert figures.update_readme(ROOT / "README.md", ROOT, check=True) is False, \
        "README figures differ from docs/figures/*.json: run `python -m sre_llm.figures --readme README.md`"


def test_demo_figures_are_stamped_and_complete() -> None:
    data = json.loads((ROOT / "docs/figures/demo.json").read_text())
    assert set(data["stamp"]) >= {"commit", "date", "cores", "machine", "python"}
    assert data["test_examples"] >= 1000 and data["gates"] and data["promoted"]


def test_blocks_render_from_data(tmp_path: Path) -> None:
    stamp = {"commit": "abc", "date": "2026-12-01", "cores": 2, "machine": "x86_64", "python": "3.11.7"}
    bench = {"stamp": stamp, "results": {"sign_verify": {"benchmark": "sign_verify", "ratio": 0.56, "target": 1.5},
                                         "train_overhead": {"ratio": {"min": 1.0, "median": 1.016, "max": 1.033}, "target": 1.03},
                                         "gateway_overhead": {"alerts": 115, "vllm_cpus": "1", "results": [
                                             {"concurrency": 8, "added_p50_ms_median": -0.5, "added_ms_paired_median_median": 1.2,
                                              "throughput_ratio_median": 1.007,
                                              "rounds": [{"throughput_ratio": 0.95}, {"throughput_ratio": 1.018}]}],
                                             "isolated": [{"concurrency": 1, "added_p50_ms": 2.8, "throughput_ratio": 0.987}],
                                             "agent_sre_prompt": {"agent_sre_tokens_median": 702.0, "canonical_tokens_median": 118.0,
                                                                  "agent_sre_prefill_ms_median": 61.2, "canonical_prefill_ms_median": 14.0,
                                                                  "agent_sre_unconstrained_ms_median": 300.5}}}}
    block = figures.bench_block(bench)
    assert ("concurrency 8: -0.5 ms P50 (+1.2 ms per alert), 1.01× (rounds 0.95–1.02) (115 alerts, vLLM on CPUs 1); "
            "the gateway alone (an upstream that uses no CPU) at concurrency 1: +2.8 ms, 0.987×; agent-sre's own prompt "
            "to vLLM unconstrained: 702 tokens vs 118 canonical, prefill 61.2 vs 14.0 ms, a whole answer 300.5 ms") in block
    assert "| `sign_verify` | sign + verify a model vs one `sha256sum` pass | ≤ 1.5× | 0.56× |" in block
    assert "| `train_overhead` |" in block and "1.02× (min 1, max 1.03)" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{figures.BENCH_BEGIN}\nstale\n{figures.BENCH_END}\ny\n")
    (tmp_path / "docs/figures").mkdir(parents=True)
    (tmp_path / "docs/figures/bench.json").write_text(json.dumps(bench))
    assert figures.update_readme(readme, tmp_path, check=True) is True
    assert figures.update_readme(readme, tmp_path) is True
    assert readme.read_text() == f"x\n{figures.BENCH_BEGIN}\n{block}{figures.BENCH_END}\ny\n"
    assert figures.update_readme(readme, tmp_path, check=True) is False
