"""The answer store (answers.jsonl in a bundle): id, text and votes of every corpus answer, by row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AnswerStore:
    ids: list[str]
    texts: list[str]
    scores: list[float | None]
    row_of: dict[str, int] = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> AnswerStore:
        ids, texts, scores = [], [], []
        with Path(path).open() as handle:
            for line in handle:
                record = json.loads(line)
                ids.append(record["id"])
                texts.append(record["text"])
                scores.append(record.get("score"))
        return cls(ids, texts, scores, {answer_id: row for row, answer_id in enumerate(ids)})

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: list[str]) -> tuple[list[int], list[str]]:
        """Rows of `ids`, and the ids that are not in the store."""
        rows, unknown = [], []
        for answer_id in ids:
            row = self.row_of.get(answer_id)
            if row is None:
                unknown.append(answer_id)
            else:
                rows.append(row)
        return rows, unknown
