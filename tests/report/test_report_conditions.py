"""The report says what was measured: output rule, caching, prompt reuse, SD-on launch differences, and which
prompts' output length differs between SD off and SD on."""

from __future__ import annotations

import json

from speedbench.metrics import speed_bench as sb
from speedbench.quality.equivalence import length_differences
from speedbench.report.conditions import conditions, output_rule
from speedbench.report.load import ReportData
from speedbench.report.render import render
from tests.conftest import make_record


def test_output_rule_names_eos_or_fixed_length():
    assert output_rule({"load": {"output_len": 4096, "fixed_length": False}}) == "stop at EOS, cap 4096 tokens"
    assert output_rule({"load": {"output_len": 32, "fixed_length": True}}) == "fixed 32 tokens (EOS ignored)"
    # runs recorded before natural length always forced the length
    assert output_rule({"load": {"output_len": 32}}) == "fixed 32 tokens (EOS ignored)"


def test_length_differences_pair_prompts():
    off = [
        make_record((1, 2, 3), prompt_id="a"),
        make_record((1, 5), prompt_id="b"),
        make_record((1, 2), prompt_id="warm", warmup=True),
    ]
    on = [
        make_record((1, 2), prompt_id="a"),
        make_record((1, 5), prompt_id="b"),
        make_record((1, 9), prompt_id="warm", warmup=True),
    ]
    assert length_differences(on, off) == (2, [("a", 3, 2)])


def test_report_shows_conditions_and_prompts_whose_length_differs(sample_dir):
    manifest = json.loads((sample_dir / "manifest.json").read_text())
    manifest["config"]["load"].update(fixed_length=False, allow_repeats=False)
    manifest["config"]["engine"]["prefix_caching"] = False
    manifest["launch_differences"] = {
        "ngram-k3": [
            {
                "setting": "--per-request-spec-decode-metrics",
                "sd_off": "not set",
                "sd_on": "detailed",
                "set_by": "speedbench",
                "why": "w",
            }
        ]
    }
    manifest["engine"]["server_info"] = {
        "sd-off": {"engine_version": "0.5.23", "server_args": {"speculative_algorithm": None}},
        "ngram-k3": {"served_models": ["m"], "error": "GET /server_info: HTTP 500"},
    }
    (sample_dir / "manifest.json").write_text(json.dumps(manifest))
    path = sample_dir / "records" / "ngram-k3-c4.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    changed = next(r for r in rows if not r["warmup"])
    changed["completion_tokens"] = 7
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    text = render(ReportData.load([sample_dir]), "md").text
    assert "per ISL and concurrency; output: stop at EOS, cap 32 tokens" in text
    assert "| prefix caching | off |" in text
    assert "except the warm-up's (older run: warm-up kept the last prompts of the file order)" in text
    assert "--per-request-spec-decode-metrics: not set -> detailed" in text
    assert "| sd-off server reported | version 0.5.23; speculative_algorithm=None |" in text
    assert "| ngram-k3 server reported | models: m; error: GET /server_info: HTTP 500 |" in text
    assert f"| ngram-k3-c4 | 11 | 1 | {changed['prompt_id']} 32->7 |" in text
    assert "| ngram-k3-c1 | 11 | 0 | - |" in text


def test_conditions_say_how_prompts_were_spent_and_what_an_attached_server_left_unknown(sample_dir):
    manifest = json.loads((sample_dir / "manifest.json").read_text())
    manifest["config"]["load"].update(fixed_length=False, allow_repeats=False)
    manifest["config"]["engine"]["prefix_caching"] = False  # the config's default: nobody applied it
    manifest["engine"]["attached"] = True
    manifest["launch_differences"] = {}
    manifest["measurement"] = {"prompt_order": "stratified", "seed": 0, "warmup": "synthetic: w"}
    (sample_dir / "manifest.json").write_text(json.dumps(manifest))
    text = render(ReportData.load([sample_dir]), "md").text
    assert "| prefix caching | unknown (attached server) |" in text
    assert "| SD-on launch vs SD off | unknown (attached server) |" in text
    assert "every prompt measured once per point, stratified order (seed 0); warm-up: synthetic: w" in text
    manifest["conditions"] = {"prefix_caching": "off (reported by the attached server)"}
    (sample_dir / "manifest.json").write_text(json.dumps(manifest))
    assert (
        "| prefix caching | off (reported by the attached server) |" in render(ReportData.load([sample_dir]), "md").text
    )


def test_report_names_the_eos_rule_and_the_headline_al_rule(sample_dir):
    manifest = json.loads((sample_dir / "manifest.json").read_text())
    rows = {r[0]: r[1] for r in conditions(ReportData.load([sample_dir])).rows}
    assert rows["EOS token"] == "ignored: no request ends at EOS"  # the fixture ran fixed-length
    assert rows["AL SPEED-Bench"] == sb.HEADLINE_RULE
    manifest["config"]["load"]["fixed_length"] = False
    (sample_dir / "manifest.json").write_text(json.dumps(manifest))
    rows = {r[0]: r[1] for r in conditions(ReportData.load([sample_dir])).rows}
    assert rows["EOS token"].startswith("stripped from acceptance as SPEED-Bench does")
    assert "counted in output TPS" in rows["EOS token"] and "not recorded: older run" in rows["EOS token"]
    manifest["metric_rules"] = dict(sb.RULES)
    (sample_dir / "manifest.json").write_text(json.dumps(manifest))
    rows = {r[0]: r[1] for r in conditions(ReportData.load([sample_dir])).rows}
    assert rows["EOS token"] == sb.EOS_RULE


def test_a_point_stored_before_speed_bench_rules_is_recomputed_or_labelled(sample_dir):
    """Old folders keep loading: with records the report applies today's rule; without, the stored
    per-request mean is shown and said to be that."""
    row = {r["point_id"]: r for r in ReportData.load([sample_dir]).rows}["ngram-k3-c4"]
    assert row["al_speedbench_rule"] == sb.HEADLINE_RULE and row["conversations"] == 11
    (sample_dir / "records" / "ngram-k3-c4.jsonl").unlink()
    row = {r["point_id"]: r for r in ReportData.load([sample_dir]).rows}["ngram-k3-c4"]
    assert row["al_speedbench_rule"] == sb.OLD_HEADLINE_RULE
    assert row["al_speedbench"] == row["al_per_request_eos_counted"] and row["conversations"] is None
