"""Tests for training.data: loading both schemas and formats, cleaning, dedup, corpus, fingerprint."""

import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from training.data import Answer, DataError, QAPair, build_corpus, fingerprint, load_pairs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared/data/eli5"


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep the Arrow files that `datasets` writes out of the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "hf-datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def eli5_row(q_id: str, title: str, texts: list[str], **extra: Any) -> dict[str, Any]:
    answers = {"a_id": [None] * len(texts), "text": texts, "score": [None] * len(texts)}
    return {"q_id": q_id, "title": title, "selftext": "", "answers": answers, **extra}


def pair(qid: str, question: str, answer_id: str, text: str) -> QAPair:
    return QAPair(qid, question, "", Answer(answer_id, text, None))


def test_loads_eli5_schema_with_top_answer_and_clean_whitespace() -> None:
    pairs = load_pairs([str(FIXTURES / "eli5.jsonl")])

    assert [p.question_id for p in pairs] == ["t001", "t002"]  # t003 has no answers
    first = pairs[0]
    assert first.question == "Why is the sky blue?"
    assert first.body == "Asking for a friend.\n\nThanks!"
    assert first.answer == Answer("t001a", "Light bounces off air and blue bounces the most.", 12.0)
    assert pairs[1].answer.id.startswith("a") and len(pairs[1].answer.id) == 17  # null a_id: hash
    assert pairs[1].answer.score is None
    assert pairs.stats["questions_without_answer"] == 1


def test_loads_flat_schema_taking_first_row_per_question() -> None:
    pairs = load_pairs([str(FIXTURES / "flat.jsonl")])

    assert [(p.question_id, p.answer.text, p.answer.score) for p in pairs] == [
        ("f1", "Yeast makes gas bubbles in the dough.", 4.0),
        ("f2", "Rivers carry salt from rocks into it.", None),
    ]
    assert pairs[0].body == "Just curious."
    assert pairs[1].body == ""


def _write_parquet(tmp_path: Path) -> str:
    rows = [json.loads(line) for line in (FIXTURES / "flat.jsonl").read_text().splitlines()]
    path = tmp_path / "flat.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return str(path)


@pytest.mark.parametrize(
    "make_source",
    [lambda _: str(FIXTURES / "flat.csv"), _write_parquet],
    ids=["csv", "parquet"],
)
def test_loads_csv_and_parquet(make_source: Any, tmp_path: Path) -> None:
    pairs = load_pairs([make_source(tmp_path)])

    assert [p.question for p in pairs] == ["What makes bread rise?", "Why is the ocean salty?"]
    assert pairs[0].answer.score == 4.0
    assert pairs[1].answer.score is None


@pytest.mark.parametrize("dead", ["[deleted]", "[removed]", "", "   ", " [Removed] "])
def test_dead_answer_is_skipped_for_the_next_one(dead: str, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", [eli5_row("q1", "Why?", [dead, "Because."])])

    pairs = load_pairs([source])

    assert pairs[0].answer.text == "Because."
    assert pairs.stats["answers_dropped"] == 1


def test_flat_dead_row_is_skipped_for_the_next_row(tmp_path: Path) -> None:
    rows = [{"question": "Why?", "answer": "[deleted]"}, {"question": "Why?", "answer": "Because."}]

    pairs = load_pairs([write_jsonl(tmp_path / "f.jsonl", rows)])

    assert [p.answer.text for p in pairs] == ["Because."]


def test_url_placeholders_take_the_real_urls(tmp_path: Path) -> None:
    row = eli5_row(
        "q1", "What is _URL_0_?", ["See _URL_0_ or _URL_1_."],
        title_urls={"url": ["https://example.org/t"]},
        selftext_urls={"url": []},
        answers_urls={"url": ["https://example.org/a", "https://example.org/b"]},
    )  # fmt: skip

    (loaded,) = load_pairs([write_jsonl(tmp_path / "u.jsonl", [row])])

    assert loaded.question == "What is https://example.org/t?"
    assert loaded.answer.text == "See https://example.org/a or https://example.org/b."


def test_url_placeholders_without_urls_become_link(tmp_path: Path) -> None:
    row = eli5_row("q1", "What is _URL_0_?", ["See [this](_URL_0_) and _URL_3_."])

    (loaded,) = load_pairs([write_jsonl(tmp_path / "u.jsonl", [row])])

    assert loaded.question == "What is [link]?"
    assert loaded.answer.text == "See [this]([link]) and [link]."


def test_html_entities_are_decoded(tmp_path: Path) -> None:
    row = eli5_row("q1", "Is 3 &gt; 2 &amp; 1 &lt; 2?", ["Yes &amp; no: &quot;it depends&quot;"])

    (loaded,) = load_pairs([write_jsonl(tmp_path / "h.jsonl", [row])])

    assert loaded.question == "Is 3 > 2 & 1 < 2?"
    assert loaded.answer.text == 'Yes & no: "it depends"'


def test_duplicate_questions_keep_the_first(tmp_path: Path) -> None:
    rows = [
        eli5_row("q1", "Why is the sky blue?", ["Scattering."]),
        eli5_row("q2", "why is the SKY  blue", ["The sea."]),
        eli5_row("q3", "Why is grass green?", ["Chlorophyll."]),
    ]

    pairs = load_pairs([write_jsonl(tmp_path / "d.jsonl", rows)])

    assert [p.question_id for p in pairs] == ["q1", "q3"]
    assert pairs.stats["duplicate_questions"] == 1


def test_question_with_empty_title_is_dropped(tmp_path: Path) -> None:
    rows = [eli5_row("q1", "  ", ["Orphan."]), eli5_row("q2", "Why?", ["Because."])]

    pairs = load_pairs([write_jsonl(tmp_path / "t.jsonl", rows)])

    assert [p.question_id for p in pairs] == ["q2"]
    assert pairs.stats["questions_without_title"] == 1


def test_sources_are_concatenated_and_deduplicated_across(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "1.jsonl", [eli5_row("q1", "Why?", ["One."])])
    second = write_jsonl(tmp_path / "2.jsonl", [eli5_row("q1", "Why?", ["One."]),
                                                 eli5_row("q2", "How?", ["Two."])])  # fmt: skip

    pairs = load_pairs([first, second])

    assert [p.question_id for p in pairs] == ["q1", "q2"]
    assert pairs.stats["rows_read"] == 3


def test_build_corpus_drops_eval_questions_seen_in_train() -> None:
    train = [pair("q1", "Why is the sky blue?", "a1", "Scattering.")]
    eval_ = [pair("q9", "Why is the sky blue?!", "a9", "Other."), pair("q2", "How?", "a2", "So.")]

    corpus = build_corpus(train, eval_)

    assert [p.question_id for p in corpus.eval] == ["q2"]
    assert corpus.stats["eval_leaked_from_train"] == 1


def test_build_corpus_shares_identical_answers() -> None:
    train = [pair("q1", "Why?", "a1", "Because it is."), pair("q2", "How?", "a2", "because, it is")]
    eval_ = [pair("q3", "When?", "a3", "Because it is!"), pair("q4", "Who?", "a4", "Nobody.")]

    corpus = build_corpus(train, eval_)

    assert [a.id for a in corpus.answers] == ["a1", "a4"]
    assert [p.answer.id for p in corpus.train + corpus.eval] == ["a1", "a1", "a1", "a4"]
    assert all(p.answer in corpus.answers for p in corpus.train + corpus.eval)
    assert corpus.stats["answers_shared"] == 2


def test_build_corpus_carries_load_stats() -> None:
    pairs = load_pairs([str(FIXTURES / "eli5.jsonl")])

    corpus = build_corpus(pairs, [])

    assert corpus.stats["train_rows_read"] == 3
    assert corpus.stats["train"] == 2
    assert corpus.stats["answers"] == 2


def _all_deleted(tmp_path: Path) -> str:
    return write_jsonl(tmp_path / "x.jsonl", [eli5_row("q1", "Why?", ["[deleted]"])])


def _unknown_columns(tmp_path: Path) -> str:
    return write_jsonl(tmp_path / "x.jsonl", [{"prompt": "Why?", "response": "Because."}])


def _empty_jsonl(tmp_path: Path) -> str:
    (tmp_path / "x.jsonl").write_text("")
    return str(tmp_path / "x.jsonl")


def _header_only_csv(tmp_path: Path) -> str:
    (tmp_path / "x.csv").write_text("question,answer\n")
    return str(tmp_path / "x.csv")


def _unsupported_suffix(tmp_path: Path) -> str:
    (tmp_path / "x.txt").write_text("Why?\n")
    return str(tmp_path / "x.txt")


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda tmp: str(tmp / "missing.jsonl"), r"not found: .*missing\.jsonl"),
        (_unknown_columns, r"unknown schema, columns \['prompt', 'response'\].*ELI5.*flat"),
        (_empty_jsonl, r"x\.jsonl: dataset is empty"),
        (_header_only_csv, r"x\.csv: dataset is empty"),
        (_all_deleted, r"no usable question/answer pairs"),
        (_unsupported_suffix, r"unsupported file type '\.txt'"),
    ],
    ids=["missing", "unknown-columns", "empty-jsonl", "header-only-csv", "all-deleted", "suffix"],
)
def test_bad_sources_raise_data_error(make_source: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=message):
        load_pairs([make_source(tmp_path)])


def test_build_corpus_refuses_when_every_eval_question_leaks() -> None:
    train = [pair("q1", "Why?", "a1", "Because.")]

    with pytest.raises(DataError, match="every eval question"):
        build_corpus(train, [pair("q2", "why", "a2", "Other.")])


@pytest.mark.parametrize(("split", "expected"), [("", "Train q?"), (":validation", "Dev q?")])
def test_loads_local_dataset_directory_like_a_hub_id(
    split: str, expected: str, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"question": "Train q?", "answer": "A."}])
    write_jsonl(tmp_path / "validation.jsonl", [{"question": "Dev q?", "answer": "B."}])

    pairs = load_pairs([f"{tmp_path}{split}"])

    assert [p.question for p in pairs] == [expected]


def test_hub_id_is_parsed_and_its_failure_becomes_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'eli5' on the Hub (OfflineModeIsEnabled)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)

    with pytest.raises(DataError, match=r"^cannot load eli5/LFQA_reddit:train_eli5 .*Hub.*Offline"):
        load_pairs(["eli5/LFQA_reddit:train_eli5"])
    assert calls == [(("eli5", "LFQA_reddit"), {"split": "train_eli5"})]


def test_fingerprint_is_stable_and_follows_file_bytes(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "f.jsonl", [{"question": "Why?", "answer": "Because."}])
    before = fingerprint([source])

    assert fingerprint([source]) == before
    write_jsonl(tmp_path / "f.jsonl", [{"question": "Why?", "answer": "Because!"}])
    assert fingerprint([source]) != before
    assert fingerprint(["eli5:train_eli5"]) != fingerprint(["eli5:validation_eli5"])


@pytest.mark.real_data
@pytest.mark.skipif(not (REAL_DATA / "train.jsonl").is_file(), reason="no shared ELI5 data")
def test_real_eli5_train_loads_clean() -> None:
    pairs = load_pairs([str(REAL_DATA / "train.jsonl")])

    assert len(pairs) > 4000
    assert not any("_URL_" in p.question + p.body + p.answer.text for p in pairs)
