"""`speedbench report` / `compare` through the CLI: tables, exports, JSON document, refusal of mismatched prompts."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from speedbench.cli import main
from speedbench.metrics.category import CATEGORIES
from tests.report.conftest import build_results


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_markdown_has_every_section_and_all_categories(sample_dir):
    res = run("report", sample_dir, "--format", "md")
    assert res.exit_code == 0, res.output
    for heading in (
        "## At a glance",
        "## Throughput and latency per ISL and concurrency",
        "## Crossover concurrency",
        "## Acceptance per category: tok/step",
        "## Acceptance per category: AL drafted",
        "## Acceptance per draft position",
    ):
        assert heading in res.output
    header = next(line for line in res.output.splitlines() if line.startswith("| model / SD / engine | Coding"))
    assert header.split(" | ")[1:12] == list(CATEGORIES)
    assert "gemma3-270m / ngram / vllm / k=3" in res.output


def test_piped_terminal_table_is_not_truncated(sample_dir):
    """CliRunner's stdout is not a TTY: rich must not squeeze cells into 80 columns."""
    res = run("report", sample_dir)
    assert res.exit_code == 0
    assert "…" not in res.output
    for header in ("speedup out", "speedup user", "AL drafted", "Summarization", "Multilingual"):
        assert header in res.output
    assert "none in range (speedup < 1 at every concurrency" in res.output


def test_synthetic_crossover_and_extras_are_reported(synthetic_dir):
    res = run("report", synthetic_dir, "--format", "md")
    assert res.exit_code == 0, res.output
    assert f"{2**2.5:.1f} (between 4 and 8)" in res.output
    assert "## Quality" in res.output and "exact_match" in res.output and "greedy outputs compared" in res.output
    assert "## Draft-length (gamma) recommendation" in res.output and "best_k" in res.output


def test_json_document_is_versioned_and_complete(synthetic_dir):
    res = run("report", synthetic_dir, "--format", "json")
    doc = json.loads(res.output)
    assert doc["schema_version"] == 1 and doc["kind"] == "report"
    assert doc["runs"][0]["manifest"]["prompts"]["fingerprint"] == "fp0"
    assert len(doc["points"]) == 10 and len(doc["speedups"]) == 5
    x = doc["crossovers"][0]
    assert x["output_tps_crossover_status"] == "crossover"
    assert x["output_tps_crossover"] == pytest.approx(2**2.5)
    cats = {(r["sd_label"], r["category"]): r for r in doc["category_acceptance"]}
    assert cats["eagle3-k3", "Coding"]["al_drafted"] == pytest.approx(1 + (2 * 8) / (3 * 8))
    assert "NaN" not in res.output


def test_out_folder_exports_load_in_pandas(sample_dir, tmp_path, monkeypatch):
    from speedbench.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)  # plots are covered by the HTML tests
    out = tmp_path / "export"
    res = run("report", sample_dir, "--format", "csv", "--out", out)
    assert res.exit_code == 0, res.output
    points = pd.read_parquet(out / "points.parquet")
    assert len(points) == 4 and {"output_tps", "ttft_p99_ms", "output_tps_per_gpu"} <= set(points.columns)
    cats = pd.read_csv(out / "category_acceptance.csv")
    assert {"category", "tokens_per_step", "tokens_per_step_mean", "al_drafted"} <= set(cats.columns)
    assert set(cats["category"]) == set(CATEGORIES) | {"all"}
    reqs = pd.read_parquet(out / "requests.parquet")
    assert len(reqs) == sum(1 for p in (sample_dir / "records").glob("*.jsonl") for _ in p.open())
    assert {"prompt_id", "category", "warmup", "ttft_ms", "sd_accepted_tokens"} <= set(reqs.columns)
    assert len(pd.read_csv(out / "speedups.csv")) == 2


def test_compare_refuses_different_prompt_sets(tmp_path):
    a = build_results(tmp_path / "a", {1: 1.2, 4: 0.9}, engine="vllm", fingerprint="fpA")
    b = build_results(tmp_path / "b", {1: 1.1, 4: 0.8}, engine="sglang", fingerprint="fpB")
    res = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert res.exit_code == 2
    assert "different prompt sets" in res.output and "fpA" in res.output and "fpB" in res.output


def test_compare_refuses_different_generation_settings_unless_allowed(tmp_path):
    """issue 22.3: an SD-off run at output length 16 and an SD-on run at 4 are not a speedup."""
    a = build_results(tmp_path / "a", {1: 1.2}, output_len=16)
    b = build_results(tmp_path / "b", {1: 1.1}, output_len=4, engine_version="1.1")
    res = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    line = res.output.strip()
    assert "\n" not in line and "different generation settings" in line
    assert "output_len a=16, b=4" in line and "vllm version (vllm) a=1.0, b=1.1" in line
    assert "--allow-generation-mismatch" in line

    ok = CliRunner().invoke(main, ["compare", str(a), str(b), "--format", "md", "--allow-generation-mismatch"])
    assert ok.exit_code == 0, ok.output
    assert "Generation settings DIFFER (compared on request): output_len a=16, b=4" in ok.stdout
    assert "warning: compared although generation settings differ: output_len a=16, b=4" in ok.stderr


def test_compare_same_prompts_side_by_side(tmp_path):
    a = build_results(tmp_path / "a", {1: 1.2, 4: 0.9}, engine="vllm")
    b = build_results(tmp_path / "b", {1: 1.1, 4: 0.8}, engine="sglang", tp=2)
    res = run("compare", a, b, "--format", "json", "--labels", "vllm-run,sglang-run")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["kind"] == "compare" and [r["label"] for r in doc["runs"]] == ["vllm-run", "sglang-run"]
    rows = {(r["run"], r["sd_label"], r["concurrency"]): r for r in doc["compare"]}
    # same SD label in both runs: the reference is the first run's row
    assert rows["sglang-run", "eagle3-k3", 1]["vs_ref_out"] == pytest.approx(1.1 / 1.2)
    assert rows["sglang-run", "sd-off", 4]["output_tps_per_gpu"] == pytest.approx(
        rows["sglang-run", "sd-off", 4]["output_tps"] / 2
    )
    md = run("compare", a, b, "--format", "md")
    assert "## Side by side (same prompt set)" in md.output


def test_output_tps_per_gpu_counts_every_gpu_the_engine_holds(tmp_path):
    """TP x DP, the rule cost already used (config.engine.engine_gpus): DP replicas are GPUs too."""
    a = build_results(tmp_path / "a", {1: 1.2}, tp=2, dp=2)
    res = run("report", a, "--format", "json")
    assert res.exit_code == 0, res.output
    (row, *_) = json.loads(res.output)["points"]
    assert row["engine_gpus"] == 4 and row["output_tps_per_gpu"] == pytest.approx(row["output_tps"] / 4)


def test_not_a_results_folder_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "not a speedbench results folder" in res.output


@pytest.mark.slow
def test_out_folder_writes_every_plot_as_png(synthetic_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "bundle"
    res = run("report", synthetic_dir, "--format", "html", "--out", out)
    assert res.exit_code == 0, res.output
    names = sorted(p.stem for p in (out / "plots").glob("*.png"))
    assert names == sorted(
        [
            "speedup_vs_concurrency",
            "pareto",
            "acceptance_per_category",
            "acceptance_per_position",
            "latency_percentiles",
        ]
    )
    for p in (out / "plots").glob("*.png"):
        with Image.open(p) as im:
            assert im.width > 400 and im.height > 300
    assert (out / "report.html").is_file() and (out / "points.parquet").is_file()


def test_sweep_table_printed_to_a_pipe_keeps_full_cells(sample_dir, capsys):
    """`speedbench sweep` ends with render_terminal; under `make demo > log` stdout is not a TTY."""
    from speedbench.report.table import render_terminal
    from speedbench.results import ResultsDir

    render_terminal(ResultsDir(sample_dir).summary_rows(), title=str(sample_dir))
    out = capsys.readouterr().out
    assert "…" not in out and str(sample_dir) in out
    assert max(len(line) for line in out.splitlines()) > 80
    for header in ("out tok/s", "user tok/s", "TTFT p99", "E2E p99", "tok/step", "AL drafted", "speedup out"):
        assert header in out
    assert "ngram-k3" in out and "11/11" in out


def test_a_client_bound_point_is_flagged_in_the_report(tmp_path):
    out = build_results(tmp_path / "r", {1: 1.5, 64: 1.1})
    pts = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    for p in pts:
        p["client_saturated"] = p["point_id"] == "eagle3-k3-c64"
    (out / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pts))
    res = run("report", out, "--format", "md")
    assert res.exit_code == 0, res.output
    flagged = [line for line in res.output.splitlines() if "CLIENT-BOUND" in line and line.startswith("|")]
    assert len(flagged) == 1 and "| 64 |" in flagged[0] and "eagle3-k3" in flagged[0]
