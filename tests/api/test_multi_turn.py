"""Multi-turn conversations end to end against the fake vLLM-shaped server: turns, ids, per-turn AL, report."""

from __future__ import annotations

import pytest

from speedbench import BenchmarkConfig, BenchmarkRunner
from speedbench.data.promptset import turn_ids_digest
from speedbench.report.load import ReportData
from speedbench.report.sections import build_sections
from speedbench.results import ResultsDir

pytestmark = pytest.mark.slow  # two small sweeps against the fake server: ~10 s


def _contains_run(haystack: list[int], needle: list[int]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def test_every_turn_is_sent_with_the_models_reply(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    conf = attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[2])
    conf["load"]["warmup_requests"] = 0  # every prompt measured: the counts below are the whole split's
    cfg = BenchmarkConfig.model_validate(conf)
    result = BenchmarkRunner(cfg, progress=False).run()
    rd = ResultsDir(result.results_dir)
    manifest = rd.manifest()
    assert manifest["config"]["data"]["turns"] == "all"
    assert manifest["prompts"]["turns_used"] == "every user turn" and "reply ids" in manifest["prompts"]["turns_rule"]
    assert manifest["prompts"]["turns_planned"] == 19  # 11 prompts, 8 of them MT-Bench with a second turn

    sent = {turn_ids_digest(e.prompt_ids): e.prompt_ids for e in fake_sd_server.log}
    records = [r for r in rd.records("ngram-k3-c2") if not r.warmup]
    assert len(records) == 19 and all(r.status == "ok" for r in records)
    by_conv: dict[str, dict[int, object]] = {}
    for r in records:
        by_conv.setdefault(r.conversation_id, {})[r.turn] = r
    assert len(by_conv) == 11 and sum(len(c) == 2 for c in by_conv.values()) == 8
    for conv in by_conv.values():
        if 2 not in conv:
            continue
        first, second = conv[1], conv[2]
        ids = sent[second.prompt_sha256]  # what the server received for the second turn
        assert second.server_prompt_ids_match and second.prompt_len == len(ids)
        assert _contains_run(ids, first.output_ids) and len(first.output_ids) == 12
        assert second.t_start_ns >= first.t_end_ns and second.prompt_len > first.prompt_len + 12

    point = result.points[0]
    assert point.sent == point.ok == 19 and point.not_sent == 0
    t1, t2 = point.per_turn
    assert (t1["turn"], t1["requests"], t2["turn"], t2["requests"]) == (1, 11, 2, 8)
    assert t1["al_drafted"] > 1 and t2["al_drafted"] > 1
    assert rd.summary_rows()[0]["al_drafted_by_turn"] == f"1:{t1['al_drafted']:.3f},2:{t2['al_drafted']:.3f}"

    sections = {s.key: s for s in build_sections(ReportData.load([result.results_dir]))}
    turns = sections["turns"]
    assert [row[2] for row in turns.rows] == ["1", "2"]
    assert turns.rows[1][-1] == f"{t2['al_drafted']:.2f}"


def test_first_turn_only_on_request(tmp_path, tiny_tokenizer, fake_sd_server, attach_config):
    conf = attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[2])
    conf["data"]["turns"] = "first"
    conf["load"]["warmup_requests"] = 0
    result = BenchmarkRunner(BenchmarkConfig.model_validate(conf), progress=False).run()
    records = [r for r in ResultsDir(result.results_dir).records("ngram-k3-c2") if not r.warmup]
    assert len(records) == 11 and {r.turn for r in records} == {1}
    assert result.points[0].per_turn == []
    assert "turns" not in {s.key for s in build_sections(ReportData.load([result.results_dir]))}


def test_the_tokenizer_is_not_held_while_measuring(
    tmp_path, tiny_tokenizer, fake_sd_server, attach_config, monkeypatch
):
    """Issue 29: the sweep's client kept the tokenizer it built its prompts with through every point (Gemma
    3's: ~300-450 MB of the ~650 MB client RSS of a tiny run). It is released once the prompts are built:
    no tokenizer is loaded while any request is sent."""
    from speedbench.data import tokenization
    from speedbench.load import client

    held = []
    real = client.stream_one

    async def watching(*a, **kw):
        held.append(tokenization._load_tokenizer.cache_info().currsize)
        return await real(*a, **kw)

    monkeypatch.setattr(client, "stream_one", watching)
    conf = attach_config(fake_sd_server.url, tiny_tokenizer, tmp_path, concurrency=[2])
    BenchmarkRunner(BenchmarkConfig.model_validate(conf), progress=False).run()
    assert held and set(held) == {0}
