"""Per-request cost of the reranker's question-neighbour features as the training set grows.

Random unit vectors stand in for the answers (6,524, as in ELI5) and for 4.5k and 100k reference
(training) questions; each line is the mean of 200 `QuestionNeighbours.features` calls on 100
candidates, after 20 untimed ones, on one BLAS thread like the ranking service.

    .venv/bin/python scripts/neighbour_features_cost.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the services run (launcher, Dockerfiles)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranking_service.neighbours import build_neighbours  # noqa: E402


def unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    rng = np.random.default_rng(0)
    answers = unit(rng, 6524)
    for n_questions in (4526, 100_000):
        neighbours = build_neighbours(answers, unit(rng, n_questions), rng.integers(0, len(answers), n_questions), k=10)
        query = unit(rng, 1)[0]
        rows = rng.choice(len(answers), 100, replace=False)
        dense = answers[rows] @ query
        for _ in range(20):
            neighbours.features(query, rows, dense)
        start = time.perf_counter()
        for _ in range(200):
            neighbours.features(query, rows, dense)
        print(f"{n_questions:>7,} reference questions: {(time.perf_counter() - start) / 200 * 1000:.3f} ms per 100 candidates")


if __name__ == "__main__":
    main()
