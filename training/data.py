"""Question/answer data: load ELI5 or flat sources (local or Hub), clean them, build the corpus.

A source is a local file (``.jsonl``/``.json``/``.parquet``/``.csv``), a local dataset directory,
or a Hugging Face Hub id with an optional split: ``name``, ``name:split`` or ``name/config:split``
(``owner/name/config:split`` for a namespaced repo); the split defaults to ``train``. A local
directory may take a split too (``path/to/dir:validation``).
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets

logger = logging.getLogger(__name__)

_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_SCHEMAS = "ELI5 (title, answers{text, ...}) or flat (question, answer)"
_DEAD_ANSWERS = frozenset({"", "[deleted]", "[removed]"})
# Keys of Pairs.stats and Corpus.stats (which also holds the load stats as train_*/eval_*, and train/eval/answers).
_LOAD_STATS = ("rows_read", "answers_dropped", "questions_without_answer", "questions_without_title")
_LOAD_STATS += ("duplicate_questions", "pairs")
_CORPUS_STATS = ("train_duplicates", "eval_duplicates", "eval_leaked_from_train", "answers_shared", "id_conflicts")
_URL_PLACEHOLDER = re.compile(r"_URL_(\d+)_")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_INLINE_SPACE = re.compile(r"[^\S\n]+")  # any whitespace but a newline
_BLANK_LINES = re.compile(r"\n{3,}")


class DataError(ValueError):
    """Bad input data: message is a one-line, user-facing reason (no traceback needed)."""


@dataclass(frozen=True)
class Answer:
    id: str
    text: str
    score: float | None


@dataclass(frozen=True)
class QAPair:
    question_id: str
    question: str  # the title: this is the query at evaluation time
    body: str  # selftext ('' if none)
    answer: Answer  # the question's first (top) answer after cleaning


@dataclass(frozen=True)
class Corpus:
    answers: list[Answer]  # deduplicated answer pool = top answer of every train and eval question
    train: list[QAPair]  # answer.id refers to an entry of `answers`
    eval: list[QAPair]
    stats: dict[str, int]  # counts read, kept and dropped, train_* / eval_* from load_pairs


class Pairs(list[QAPair]):
    """What `load_pairs` returns: a plain list of pairs that also carries its read/drop `stats`."""

    def __init__(self, pairs: Iterable[QAPair] = (), stats: Mapping[str, int] | None = None):
        super().__init__(pairs)
        self.stats: dict[str, int] = dict(stats or {})


@dataclass(frozen=True)
class _Source:
    kind: str  # "file" | "dir" | "hub"
    location: str  # file or directory path, or Hub repo id
    config: str | None
    split: str


_Key = tuple[str, str]  # ("title", normalised title) or ("id", question id)
_Candidate = tuple[str | None, str, float | None]  # (answer id, cleaned text, score)
_RawQuestion = tuple[str | None, str, str, list[_Candidate]]  # (question id, title, body, answers)


def load_pairs(sources: Sequence[str]) -> Pairs:
    """Load, clean and deduplicate question/answer pairs from `sources`, concatenated in order.

    Args:
        sources: local files, local dataset directories or Hub ids (see the module docstring).

    Returns:
        One pair per kept question, with its first usable answer; `.stats` holds the counts.

    Raises:
        DataError: a source is missing, unreadable, empty or of an unknown schema, or nothing
            is left after cleaning.
    """
    if not sources:
        raise DataError("no data sources given")
    stats = Counter(dict.fromkeys(_LOAD_STATS, 0))
    pairs: list[QAPair] = []
    seen: set[_Key] = set()
    for source in sources:
        table = _load_table(source, _resolve(source))
        if table.num_rows == 0:
            raise DataError(f"{source}: dataset is empty")
        stats["rows_read"] += table.num_rows
        for qid, title, body, candidates in _raw_questions(table, source):
            answers = [c for c in candidates if c[1].casefold() not in _DEAD_ANSWERS]
            stats["answers_dropped"] += len(candidates) - len(answers)
            qid = qid or _hash_id("q", title)
            keys = {("title", normalise(title)), ("id", qid)}
            if not normalise(title):
                stats["questions_without_title"] += 1
            elif not answers:
                stats["questions_without_answer"] += 1
            elif not keys.isdisjoint(seen):
                stats["duplicate_questions"] += 1
            else:
                seen |= keys
                a_id, text, score = answers[0]
                answer = Answer(id=a_id or _hash_id("a", text), text=text, score=score)
                pairs.append(QAPair(question_id=qid, question=title, body=body, answer=answer))
    stats["pairs"] = len(pairs)
    logger.info("loaded %s: %s", ", ".join(sources), _summary(stats))
    if not pairs:
        raise DataError(f"no usable question/answer pairs left after cleaning {', '.join(sources)}")
    return Pairs(pairs, stats)


def build_corpus(train: Sequence[QAPair], eval: Sequence[QAPair]) -> Corpus:
    """Deduplicate questions across splits and pool their top answers.

    Eval questions whose normalised title (or id) is also in train are dropped as leaks. Questions
    whose top answers have the same normalised text share one `Answer` (the first one's id).

    Args:
        train: training pairs; stats carried by a `load_pairs` result are copied as ``train_*``.
        eval: evaluation pairs (stats copied as ``eval_*``); may be empty.

    Returns:
        The corpus; every pair's `answer` is the very object held in `answers`.

    Raises:
        DataError: no train pair, or every eval pair duplicates a train pair.
    """
    counts = Counter(dict.fromkeys(_CORPUS_STATS, 0))
    train_keys: set[_Key] = set()
    kept_train = _unique(train, train_keys, counts, "train_duplicates")
    kept_eval = _unique(eval, set(), counts, "eval_duplicates", leak_keys=train_keys)
    if not kept_train:
        raise DataError("no training pairs to build a corpus from")
    if eval and not kept_eval:
        raise DataError("every eval question is a duplicate of a train question")

    pool: dict[str, Answer] = {}  # normalised text -> shared Answer
    ids: set[str] = set()
    for pair in kept_train + kept_eval:
        key, answer = normalise(pair.answer.text) or pair.answer.text, pair.answer
        if key in pool:
            counts["answers_shared"] += 1
            continue
        if answer.id in ids:  # one explicit id on two different texts
            answer = replace(answer, id=_hash_id("a", answer.text))
            counts["id_conflicts"] += 1
        pool[key] = answer
        ids.add(answer.id)

    def shared(pair: QAPair) -> QAPair:
        answer = pool[normalise(pair.answer.text) or pair.answer.text]
        return pair if answer is pair.answer else replace(pair, answer=answer)

    counts.update(train=len(kept_train), eval=len(kept_eval), answers=len(pool))
    logger.info("built corpus: %s", _summary(counts))
    loaded = (("train", _stats_of(train)), ("eval", _stats_of(eval)))
    stats = {f"{split}_{key}": value for split, counted in loaded for key, value in counted.items()}
    kept_train, kept_eval = [shared(p) for p in kept_train], [shared(p) for p in kept_eval]
    return Corpus(answers=list(pool.values()), train=kept_train, eval=kept_eval, stats={**stats, **counts})


def fingerprint(sources: Sequence[str]) -> str:
    """Return a stable sha256 over the local sources' bytes (a Hub id contributes its string).

    Raises:
        DataError: a local source is missing.
    """
    digest = hashlib.sha256()
    for source in sources:
        src = _resolve(source)
        digest.update(f"\0{src.kind}\0{src.split}\0".encode())
        if src.kind == "hub":
            digest.update(source.encode())
            continue
        root = Path(src.location)
        files = [root] if src.kind == "file" else sorted(root.rglob("*"))
        for path in files:
            relative = path.relative_to(root)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue  # datasets ignores hidden files too
            digest.update(f"\0{relative.as_posix()}\0".encode())
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


def normalise(text: str) -> str:
    """The comparison key for titles and answers: casefolded, no punctuation, single spaces."""
    return " ".join(_PUNCTUATION.sub("", text.casefold()).split())


def _resolve(source: str) -> _Source:
    path = Path(source).expanduser()
    if path.is_file() or path.is_dir():
        return _Source("file" if path.is_file() else "dir", str(path), None, "train")
    name, colon, split = source.rpartition(":")
    name, split = (name, split or "train") if colon else (source, "train")
    if name and Path(name).expanduser().is_dir():
        return _Source("dir", str(Path(name).expanduser()), None, split)
    if path.suffix.lower() in _FILE_BUILDERS or source.startswith(("/", ".", "~")):
        raise DataError(f"data file not found: {source}")
    parts = name.split("/")
    if len(parts) in (2, 3):  # name/config or owner/name/config
        return _Source("hub", "/".join(parts[:-1]), parts[-1], split)
    return _Source("hub", name, None, split)


def _load_table(source: str, src: _Source) -> datasets.Dataset:
    args: tuple[str, ...] = (src.location,) if src.config is None else (src.location, src.config)
    kwargs: dict[str, Any] = {"split": src.split}
    if src.kind == "file":
        suffix = Path(src.location).suffix.lower()
        if suffix not in _FILE_BUILDERS:
            raise DataError(f"{source}: unsupported file type {suffix!r}, expected one of {', '.join(_FILE_BUILDERS)}")
        with open(src.location, "rb") as f:
            empty = not f.read(1 << 16).strip()
        if empty:
            raise DataError(f"{source}: dataset is empty")
        args, kwargs["data_files"] = (_FILE_BUILDERS[suffix],), src.location
    try:
        table = datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # datasets raises many types: hub, offline, parse, split errors
        if "corresponds to no data" in str(exc):  # e.g. a csv with a header only
            raise DataError(f"{source}: dataset is empty") from exc
        hub = " (not a local path, tried as a Hugging Face Hub id)" if src.kind == "hub" else ""
        raise DataError(f"cannot load {source}{hub}: {_one_line(exc)}") from exc
    if not isinstance(table, datasets.Dataset):
        raise DataError(f"cannot load {source}: expected one split, got {type(table).__name__}")
    return table


def _raw_questions(table: datasets.Dataset, source: str) -> Iterable[_RawQuestion]:
    columns = set(table.column_names)
    rows = (dict(zip(b, values)) for b in table.iter(batch_size=1024) for values in zip(*b.values()))
    if {"title", "answers"} <= columns:
        return map(_eli5_question, rows)
    if {"question", "answer"} <= columns:
        return _flat_questions(rows)
    raise DataError(f"{source}: unknown schema, columns {sorted(columns)}; expected {_SCHEMAS}")


def _eli5_question(row: dict[str, Any]) -> _RawQuestion:
    answers = row.get("answers") or {}
    ids, scores = answers.get("a_id") or [], answers.get("score") or []
    urls = _urls(row.get("answers_urls"))
    candidates = [
        (_id(_at(ids, i)), _clean(text, urls), _score(_at(scores, i)))
        for i, text in enumerate(answers.get("text") or [])
    ]
    title = " ".join(_clean(row.get("title"), _urls(row.get("title_urls"))).split())
    body = _clean(row.get("selftext"), _urls(row.get("selftext_urls")))
    return _id(row.get("q_id")), title, body, candidates


def _flat_questions(rows: Iterable[dict[str, Any]]) -> Iterable[_RawQuestion]:
    """Group flat rows (one answer each) by question id, else by title, in first-seen order."""
    questions: dict[str, _RawQuestion] = {}
    for row in rows:
        title = " ".join(_clean(row.get("question")).split())
        qid = _id(_first(row, "question_id", "id"))
        question = questions.setdefault(qid or f"title:{normalise(title)}", (qid, title, _clean(row.get("body")), []))
        score = _score(_first(row, "score", "answer_score"))
        question[3].append((_id(row.get("answer_id")), _clean(row.get("answer")), score))
    return questions.values()


def _clean(text: Any, urls: Sequence[str] = ()) -> str:
    """Decode HTML entities, fill `_URL_n_` placeholders, normalise spaces (keeping paragraphs)."""
    if not isinstance(text, str):
        return ""

    def url(match: re.Match[str]) -> str:
        i = int(match[1])
        return urls[i] if i < len(urls) and urls[i] else "[link]"

    text = _URL_PLACEHOLDER.sub(url, html.unescape(text)).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _urls(value: Any) -> list[str]:
    if isinstance(value, Mapping):  # HF eli5 stores {"url": [...]}; a bare list works too
        value = value.get("url")
    return [u if isinstance(u, str) else "" for u in value] if isinstance(value, list) else []


def _first(row: Mapping[str, Any], *names: str) -> Any:
    return next((row[n] for n in names if row.get(n) is not None), None)


def _at(values: Sequence[Any], i: int) -> Any:
    return values[i] if i < len(values) else None


def _id(value: Any) -> str | None:
    if isinstance(value, float):  # a csv id column with an empty cell is read as floats
        value = None if math.isnan(value) else int(value) if value.is_integer() else value
    text = "" if value is None else str(value).strip()
    return text or None


def _score(value: Any) -> float | None:
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(score) else score


def _hash_id(prefix: str, text: str) -> str:
    return prefix + hashlib.sha1((normalise(text) or text).encode()).hexdigest()[:16]


def _unique(
    pairs: Iterable[QAPair], seen: set[_Key], stats: Counter[str], stat: str, leak_keys: AbstractSet[_Key] = frozenset()
) -> list[QAPair]:
    """Keep the first pair per normalised title and per id; count the rest as `stat` (or as leaks)."""
    kept = []
    for pair in pairs:
        keys = {("title", normalise(pair.question)), ("id", pair.question_id)}
        if not keys.isdisjoint(leak_keys):
            stats["eval_leaked_from_train"] += 1
        elif not keys.isdisjoint(seen):
            stats[stat] += 1
        else:
            seen |= keys
            kept.append(pair)
    return kept


def _stats_of(pairs: Sequence[QAPair]) -> Mapping[str, int]:
    return pairs.stats if isinstance(pairs, Pairs) else {}


def _summary(stats: Mapping[str, int]) -> str:
    return ", ".join(f"{key}={value}" for key, value in stats.items())


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"
