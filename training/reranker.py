"""Train the Keras reranker on hard negatives mined from the retrieval stage's own candidates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

from ranking_service.features import NUM_FEATURES, AnswerTable, candidate_features
from ranking_service.model import Reranker

logger = logging.getLogger(__name__)


@dataclass
class CandidateLists:
    """Per-query candidate lists with features. Shapes: features (n, c, F), rows (n, c), q (n, dim)."""

    features: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]
    question_embeddings: npt.NDArray[np.float32]


def build_lists(
    queries: Sequence[str],
    question_embeddings: npt.NDArray[np.float32],
    candidate_rows: npt.NDArray[np.int64],
    table: AnswerTable,
    exclude_questions: npt.NDArray[np.int64] | None = None,
) -> CandidateLists:
    """Compute the features of every query's retrieved candidates (the serving code path).

    Args:
        exclude_questions: (n,) for training queries, each one's row among the reference
            questions of `table.neighbours` (-1 if not among them), so that it is left out of its
            own candidates' neighbour features, as a new question at serving time would be.
    """
    n, c = candidate_rows.shape
    features = np.empty((n, c, NUM_FEATURES), dtype=np.float32)
    for i, query in enumerate(queries):
        exclude = None if exclude_questions is None or exclude_questions[i] < 0 else int(exclude_questions[i])
        features[i], _ = candidate_features(query, question_embeddings[i], candidate_rows[i], table, exclude)
    return CandidateLists(features, candidate_rows, question_embeddings.astype(np.float32))


def _dataset(lists: CandidateLists, labels, table_tensor, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((lists.features, lists.question_embeddings, lists.rows, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def to_inputs(features, question, rows, label):
        # Gather answer vectors per batch instead of materialising (n, c, dim) up front.
        return {"features": features, "question": question, "answers": tf.gather(table_tensor, rows)}, label

    return ds.batch(batch_size).map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def train_reranker(
    lists: CandidateLists,
    gold_rows: npt.NDArray[np.int64],
    table: AnswerTable,
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    validation_fraction: float = 0.1,
    seed: int = 0,
    verbose: int = 2,
    **model_options,
) -> tuple[Reranker, dict[str, list[float]]]:
    """Listwise training: softmax over each list, the gold answer as target.

    `model_options` go to `Reranker` (projection_dim, hidden_units, dropout).

    Lists whose gold answer was not retrieved teach nothing about ordering and are dropped.
    The best epoch is chosen on a validation slice of the training queries (never the eval set).
    """
    hits = lists.rows == gold_rows[:, None]  # (n, c)
    keep = hits.any(axis=1)
    if keep.sum() < 2:
        raise ValueError(f"only {int(keep.sum())} training questions have their answer among the candidates")
    kept = CandidateLists(lists.features[keep], lists.rows[keep], lists.question_embeddings[keep])
    labels = hits[keep].argmax(axis=1).astype(np.int32)
    logger.info("reranker: %d of %d lists contain the gold answer", int(keep.sum()), len(keep))

    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val = max(1, int(len(labels) * validation_fraction))
    val, tr = order[:n_val], order[n_val:]

    def subset(idx):
        return CandidateLists(kept.features[idx], kept.rows[idx], kept.question_embeddings[idx])

    model = Reranker(num_features=lists.features.shape[-1], embedding_dim=table.embeddings.shape[1], **model_options)
    model.adapt(kept.features[tr])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")],
    )
    table_tensor = tf.constant(table.embeddings)
    history = model.fit(
        _dataset(subset(tr), labels[tr], table_tensor, batch_size, True, seed),
        validation_data=_dataset(subset(val), labels[val], table_tensor, batch_size, False, seed),
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline shuffles
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)],
        verbose=verbose,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def reranker_scores(model: Reranker, lists: CandidateLists, table: AnswerTable, batch_size: int = 256) -> npt.NDArray[np.float32]:
    """Reranker score of every candidate: (n, c), in the lists' candidate order."""
    call = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    out = np.empty(lists.rows.shape, dtype=np.float32)
    for start in range(0, len(lists.rows), batch_size):
        sl = slice(start, start + batch_size)
        out[sl] = call(
            {
                "features": tf.constant(lists.features[sl]),
                "question": tf.constant(lists.question_embeddings[sl]),
                "answers": tf.constant(table.embeddings[lists.rows[sl]]),
            }
        ).numpy()  # (batch, c)
    return out


def sort_by_score(rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Each list's rows, best score first (ties keep the retrieval order): (n, c)."""
    return np.take_along_axis(rows, np.argsort(-scores, axis=1, kind="stable"), axis=1)


def rerank(model: Reranker, lists: CandidateLists, table: AnswerTable, batch_size: int = 256) -> npt.NDArray[np.int64]:
    """Candidate rows re-sorted by reranker score, best first: (n, c)."""
    return sort_by_score(lists.rows, reranker_scores(model, lists, table, batch_size))
