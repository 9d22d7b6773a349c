"""The Keras reranker and its serving wrapper.

The model scores each candidate from (a) hand-made features (dense and BM25 scores, ranks, answer
length, votes) and (b) a learned interaction between trainable projections of the question and
answer embeddings, which lets it correct the frozen encoder's similarity. It is trained listwise:
a softmax over each question's retrieved candidates, the gold answer being the target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import tensorflow as tf  # noqa: E402

from ranking_service.features import FEATURE_NAMES, AnswerTable, candidate_features  # noqa: E402

DENSE_SCORE = FEATURE_NAMES.index("dense_score")


@keras.saving.register_keras_serializable(package="qa_reranker")
class Reranker(keras.Model):
    """Scores candidate answers for a question.

    Args:
        num_features: hand-made features per candidate.
        embedding_dim: size of the question/answer embeddings.
        projection_dim: size of the learned question/answer projections.
        hidden_units: width of the scoring MLP.
        dropout: dropout rate inside the MLP during training.

    Inputs (dict):
        features: (batch, candidates, num_features)
        question: (batch, embedding_dim)
        answers: (batch, candidates, embedding_dim)

    Returns:
        (batch, candidates) scores, higher is better.
    """

    def __init__(
        self,
        num_features: int,
        embedding_dim: int,
        projection_dim: int = 32,
        hidden_units: int = 32,
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_features", num_features), ("embedding_dim", embedding_dim),
                            ("projection_dim", projection_dim), ("hidden_units", hidden_units)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_features = num_features
        self.embedding_dim = embedding_dim
        self.projection_dim = projection_dim
        self.hidden_units = hidden_units
        self.dropout_rate = dropout
        self.feature_norm = keras.layers.Normalization(axis=-1, name="feature_norm")
        self.question_projection = keras.layers.Dense(projection_dim, use_bias=False, name="question_projection")
        self.answer_projection = keras.layers.Dense(projection_dim, use_bias=False, name="answer_projection")
        self.hidden = keras.layers.Dense(hidden_units, activation="gelu", name="hidden")
        self.dropout = keras.layers.Dropout(dropout)
        # The score starts as the retrieval order (scaled dense score, like a contrastive
        # temperature) and the layers learn a correction from zero: an untrained or weakly
        # trained reranker therefore cannot do worse than the stage it reranks.
        self.dense_scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(20.0), name="dense_scale"
        )
        self.head = keras.layers.Dense(1, kernel_initializer="zeros", name="head")
        self.linear = keras.layers.Dense(1, kernel_initializer="zeros", name="linear")

    def adapt(self, features: npt.NDArray[np.float32]) -> None:
        """Fit the feature normalisation on (n, num_features) training features."""
        self.feature_norm.adapt(features.reshape(-1, self.num_features))

    def call(self, inputs, training=False):
        dense = inputs["features"][..., DENSE_SCORE]  # (batch, cand)
        features = self.feature_norm(inputs["features"])  # (batch, cand, F)
        q = self.question_projection(inputs["question"])  # (batch, P)
        a = self.answer_projection(inputs["answers"])  # (batch, cand, P)
        interaction = keras.ops.expand_dims(q, 1) * a  # (batch, cand, P)
        x = keras.ops.concatenate([features, interaction], axis=-1)  # (batch, cand, F + P)
        h = self.dropout(self.hidden(x), training=training)  # (batch, cand, H)
        correction = keras.ops.squeeze(self.head(h) + self.linear(features), axis=-1)  # (batch, cand)
        return self.dense_scale * dense + correction  # (batch, cand)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_features=self.num_features,
            embedding_dim=self.embedding_dim,
            projection_dim=self.projection_dim,
            hidden_units=self.hidden_units,
            dropout=self.dropout_rate,
        )
        return config


def load_reranker(path) -> Reranker:
    return keras.saving.load_model(path, compile=False)


class RerankerScorer:
    """Serving wrapper: features + model call inside one traced `tf.function` (no model.predict)."""

    def __init__(self, model: Reranker, table: AnswerTable):
        if model.embedding_dim != table.embeddings.shape[1]:
            raise ValueError(
                f"reranker expects {model.embedding_dim}-d embeddings, answer table has {table.embeddings.shape[1]}"
            )
        self.model = model
        self.table = table
        f = model.num_features
        d = model.embedding_dim
        self._call = tf.function(
            lambda features, question, answers: model(
                {"features": features, "question": question, "answers": answers}, training=False
            ),
            input_signature=[
                tf.TensorSpec([None, None, f], tf.float32),
                tf.TensorSpec([None, d], tf.float32),
                tf.TensorSpec([None, None, d], tf.float32),
            ],
            reduce_retracing=True,
        )

    def score(
        self, query: str, query_embedding: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Reranker scores and dense (retrieval) scores for one query's candidate rows, each (c,)."""
        return self.score_many([(query, query_embedding, rows)])[0]

    def score_many(
        self, queries: Sequence[tuple[str, npt.NDArray[np.float32], npt.NDArray[np.int64]]]
    ) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """`score` for several (query, query_embedding, rows) at once, in order.

        Features are per query (numpy); queries with the same number of candidates share one model
        call, stacked without padding, so each gets the scores it would get alone.
        """
        prepared = [candidate_features(query, embedding, rows, self.table) for query, embedding, rows in queries]
        by_length: dict[int, list[int]] = {}
        for i, (_, _, rows) in enumerate(queries):
            by_length.setdefault(len(rows), []).append(i)
        out: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None] = [None] * len(queries)
        for members in by_length.values():
            features = np.stack([prepared[i][0] for i in members])  # (b, c, F)
            questions = np.stack([queries[i][1] for i in members]).astype(np.float32)  # (b, dim)
            answers = np.stack([prepared[i][1] for i in members])  # (b, c, dim)
            scores = self._call(features, questions, answers).numpy()  # (b, c)
            for j, i in enumerate(members):
                out[i] = (scores[j], prepared[i][0][:, 0])
        return out  # type: ignore[return-value]  # every slot is filled above
