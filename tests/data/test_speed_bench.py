import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speedbench.config import ConfigError, DataConfig
from speedbench.data.pretokenize import prepare_prompts
from speedbench.data.speed_bench import PLACEHOLDER_MARKER, load_speed_bench

PLACEHOLDER = PLACEHOLDER_MARKER + " (see the source dataset)"


def _write(root, config, rows, layout="data/speed/{config}/test.parquet"):
    path = root / layout.format(config=config)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _qual_rows(n_placeholder=0):
    rows = [
        {
            "question_id": f"q{i}",
            "category": cat,
            "sub_category": "x",
            "source": "src",
            "src_id": str(i),
            "turns": [f"Question {i} about {cat}?", "And a follow-up?"],
        }
        for i, cat in enumerate(["coding", "math", "qa", "rag"])
    ]
    for r in rows[:n_placeholder]:
        r["turns"] = [PLACEHOLDER]
    return rows


def test_prepare_script_layout_turns(tmp_path):
    _write(tmp_path, "qualitative", _qual_rows())
    prompts = load_speed_bench(str(tmp_path), "qualitative")
    assert [p.category for p in prompts] == ["Coding", "Math", "QA", "RAG"]  # canonical spelling
    assert prompts[0].turns == ("Question 0 about coding?", "And a follow-up?")
    assert prompts[0].extra == {"sub_category": "x", "src_id": "0"}


def test_hub_snapshot_layout_messages(tmp_path):
    rows = [
        {
            "question_id": 7,
            "category": "high_entropy",
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "long text"}],
        }
    ]
    _write(tmp_path, "throughput_1k", rows, layout="{config}/test-00000-of-00001.parquet")
    prompts = load_speed_bench(str(tmp_path), "throughput_1k")
    assert prompts[0].id == "7" and prompts[0].turns == ("long text",)


def test_placeholders_error_by_default_and_skip_with_count(tmp_path, caplog):
    _write(tmp_path, "qualitative", _qual_rows(n_placeholder=3))
    with pytest.raises(ConfigError, match="3 of 4 rows .* placeholder"):
        load_speed_bench(str(tmp_path), "qualitative")
    kept = load_speed_bench(str(tmp_path), "qualitative", placeholders="skip")
    assert [p.id for p in kept] == ["q3"]
    assert "3 of 4 rows" in caplog.text


def test_all_placeholders_skip_is_still_an_error(tmp_path):
    _write(tmp_path, "qualitative", _qual_rows(n_placeholder=4))
    with pytest.raises(ConfigError, match="every row"):
        load_speed_bench(str(tmp_path), "qualitative", placeholders="skip")


def test_bad_rows_and_configs(tmp_path):
    _write(tmp_path, "qualitative", [{"question_id": "a", "category": "QA"}])
    with pytest.raises(ConfigError, match="no usable 'turns'"):
        load_speed_bench(str(tmp_path), "qualitative")
    with pytest.raises(ConfigError, match="unknown SPEED-Bench config"):
        load_speed_bench(str(tmp_path), "throughput_4k")
    with pytest.raises(ConfigError, match="no parquet"):
        load_speed_bench(str(tmp_path), "throughput_8k")
    with pytest.raises(ConfigError, match="not found"):
        load_speed_bench(str(tmp_path / "missing"), "qualitative")


def test_placeholder_rows_in_plain_prompt_files_are_caught(tmp_path, gemma):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "category": "QA", "turns": ["%s"]}\n' % PLACEHOLDER)
    with pytest.raises(ConfigError, match="placeholder"):
        prepare_prompts(DataConfig(split=str(path), cache_dir=str(tmp_path)), gemma)


def test_speed_bench_split_prepares_with_exact_isl(tmp_path, gemma, cache_dir):
    _write(tmp_path, "qualitative", _qual_rows())
    base = DataConfig(split="speed-bench:qualitative", source=str(tmp_path), cache_dir=cache_dir)
    ps = prepare_prompts(base, gemma)
    assert [p.num_turns for p in ps.prompts] == [2] * 4
    with pytest.raises(ConfigError, match="pad_to_isl"):  # an ISL on a qualitative split: padding is opt-in
        prepare_prompts(base.model_copy(update={"isl": 8}), gemma)
    ps = prepare_prompts(base.model_copy(update={"isl": 8, "pad_to_isl": True}), gemma)
    assert {p.num_tokens for p in ps.prompts} == {8}
    _write(tmp_path, "throughput_1k", [{"question_id": "t", "category": "low", "turns": ["x " * 3000]}])
    ps = prepare_prompts(
        DataConfig(split="speed-bench:throughput", isl="1k", source=str(tmp_path), cache_dir=cache_dir), gemma
    )
    assert ps.prompts[0].num_tokens == 1024 and ps.prompts[0].truncated
    with pytest.raises(ConfigError, match="needs --isl"):
        prepare_prompts(DataConfig(split="speed-bench:throughput", source=str(tmp_path)), gemma)
