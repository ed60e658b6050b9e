from transcriber.evaluation.wer import corpus_wer, normalize


def test_normalisation() -> None:
    assert normalize("Нажмите 1, Ёлка!", "ru") == ["нажмите", "один", "елка"]
    assert normalize("Call 911.", "en") == ["call", "nine", "hundred", "and", "eleven"]


def test_corpus_wer_counts_all_edit_kinds() -> None:
    assert corpus_wer([("a b c d", "a x c")], "en") == 0.5
    assert corpus_wer([("a b", "a b"), ("c d", "")], "en") == 0.5
    assert corpus_wer([("", "")], "en") == 0.0
