"""Fine-tune the retrieval encoder on question -> answer pairs with in-batch negatives.

Multiple-negatives ranking loss: for a batch of (question, answer) pairs, each question must pick
its own answer among all answers in the batch (softmax over scaled cosine similarities), plus an
optional symmetric answer -> question term. Pairs that share an answer, or near-identical
questions, are masked so a true positive is never pushed away as a negative.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from retrieval_service.encoder import SentenceEncoder

logger = logging.getLogger(__name__)


def mnrl_loss(
    q: tf.Tensor,
    a: tf.Tensor,
    same: tf.Tensor,
    scale: float | tf.Tensor = 20.0,
    symmetric: bool = True,
) -> tf.Tensor:
    """Multiple-negatives ranking loss with false-negative masking.

    Args:
        q: (batch, dim) L2-normalised question vectors.
        a: (batch, dim) L2-normalised answer vectors; a[i] answers q[i].
        same: (batch, batch) bool, True where pair j's answer must not count as a negative for
            question i (same answer id or duplicate question). The diagonal is ignored.
        scale: inverse temperature applied to cosine similarities.
        symmetric: also score answers -> questions.

    Returns:
        Scalar mean loss.
    """
    n = tf.shape(q)[0]
    eye = tf.eye(n, dtype=tf.bool)
    masked = tf.logical_and(same, tf.logical_not(eye))  # (batch, batch)
    logits = tf.matmul(q, a, transpose_b=True) * scale  # (batch, batch)
    logits = tf.where(masked, tf.constant(-1e9, logits.dtype), logits)
    labels = tf.range(n)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    if symmetric:
        logits_t = tf.where(tf.transpose(masked), tf.constant(-1e9, logits.dtype), tf.transpose(logits))
        loss_t = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits_t))
        loss = (loss + loss_t) / 2
    return loss


def false_negative_mask(answer_ids: Sequence[str], question_keys: Sequence[str]) -> np.ndarray:
    """(batch, batch) True where two pairs share an answer or a normalised question."""
    a = np.asarray(answer_ids)
    k = np.asarray(question_keys)
    return (a[:, None] == a[None, :]) | (k[:, None] == k[None, :])


def fine_tune(
    encoder: SentenceEncoder,
    questions: Sequence[str],
    answers: Sequence[str],
    answer_ids: Sequence[str],
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    scale: float = 20.0,
    max_answer_length: int = 256,
    seed: int = 0,
    validate: Callable[[], float] | None = None,
) -> list[dict[str, float]]:
    """Train the encoder in place; keep the weights of the best epoch by `validate()` (higher is better).

    Returns:
        One record per epoch: loss and validation score.
    """
    if epochs <= 0:
        return []
    if not len(questions) == len(answers) == len(answer_ids):
        raise ValueError("questions, answers and answer_ids must have the same length")
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    tf.random.set_seed(seed)
    q_tokens = encoder.tokenize(questions)
    a_tokens = [ids[:max_answer_length] for ids in encoder.tokenize(answers)]
    keys = [" ".join(q.lower().split()) for q in questions]
    # The 30k x 384 token embedding is frozen: its optimizer update costs more than the rest of
    # the step on a CPU, and ELI5 is too small to move a general-purpose vocabulary usefully.
    frozen = {id(v) for v in encoder.backbone.get_layer("token_embedding").trainable_variables}
    variables = [v for v in encoder.backbone.trainable_variables if id(v) not in frozen]
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=0.01)
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec, spec, tf.TensorSpec([None, None], tf.bool)], reduce_retracing=True)
    def step(qi, qm, ai, am, same):
        with tf.GradientTape() as tape:
            qv = encoder.embed_tokens(qi, qm, training=True)  # (batch, dim)
            av = encoder.embed_tokens(ai, am, training=True)  # (batch, dim)
            loss = mnrl_loss(qv, av, same, scale=scale)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    history: list[dict[str, float]] = []
    best_score, best_weights = -np.inf, None
    if validate is not None:
        best_score = validate()
        best_weights = encoder.backbone.get_weights()
        logger.info("fine-tune: validation before training %.4f", best_score)
    order = list(range(len(questions)))
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        losses = []
        bar = tqdm(range(0, len(order), batch_size), desc=f"fine-tune epoch {epoch}/{epochs}", unit="batch")
        for start in bar:
            rows = order[start : start + batch_size]
            if len(rows) < 2:
                continue
            qi, qm = encoder.pad([q_tokens[i] for i in rows])
            ai, am = encoder.pad([a_tokens[i] for i in rows])
            same = false_negative_mask([answer_ids[i] for i in rows], [keys[i] for i in rows])
            loss = float(step(qi, qm, ai, am, same))
            losses.append(loss)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        record = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan")}
        if validate is not None:
            record["validation"] = validate()
            if record["validation"] > best_score:
                best_score, best_weights = record["validation"], encoder.backbone.get_weights()
        logger.info("fine-tune epoch %d: %s", epoch, record)
        history.append(record)
    if best_weights is not None:
        encoder.backbone.set_weights(best_weights)
    return history


def bank_loss(
    q: tf.Tensor,
    bank: tf.Tensor,
    positives: tf.Tensor,
    excluded: tf.Tensor,
    scale: float | tf.Tensor = 20.0,
) -> tf.Tensor:
    """Softmax over a fixed bank of answer vectors (every training answer is a negative).

    Args:
        q: (batch, dim) L2-normalised question vectors.
        bank: (n_bank, dim) L2-normalised answer vectors (frozen).
        positives: (batch,) int, row of each question's own answer in the bank.
        excluded: (batch, n_bank) bool, True for bank rows that must not count as negatives for
            that question (the answers of near-identical questions). The positive is never excluded.
        scale: inverse temperature.

    Returns:
        Scalar mean loss.
    """
    logits = tf.matmul(q, bank, transpose_b=True) * scale  # (batch, n_bank)
    is_positive = tf.one_hot(positives, tf.shape(bank)[0], on_value=True, off_value=False)  # (batch, n_bank)
    masked = tf.logical_and(excluded, tf.logical_not(is_positive))
    logits = tf.where(masked, tf.constant(-1e9, logits.dtype), logits)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives, logits=logits))


def fine_tune_question_tower(
    encoder: SentenceEncoder,
    questions: Sequence[str],
    positives: np.ndarray,
    bank: np.ndarray,
    excluded: Callable[[np.ndarray], np.ndarray],
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 2e-5,
    scale: float = 20.0,
    seed: int = 0,
    validate: Callable[[], float] | None = None,
    patience: int = 2,
) -> list[dict[str, float]]:
    """Fine-tune the question side against frozen, precomputed answer vectors.

    Questions are short, so a step costs a fraction of a full two-tower step, and the whole answer
    bank serves as negatives (hard ones included) instead of only the batch. The answer index built
    from the off-the-shelf encoder stays valid. The best epoch by `validate()` is kept.

    Args:
        questions: training questions.
        positives: (n,) bank row of each question's answer.
        bank: (n_bank, dim) frozen answer vectors.
        excluded: maps a batch of question indices to its (batch, n_bank) false-negative mask.
    """
    if epochs <= 0:
        return []
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    tf.random.set_seed(seed)
    q_tokens = encoder.tokenize(questions)
    frozen = {id(v) for v in encoder.backbone.get_layer("token_embedding").trainable_variables}
    variables = [v for v in encoder.backbone.trainable_variables if id(v) not in frozen]
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=0.01)
    bank_t = tf.constant(bank, dtype=tf.float32)
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(
        input_signature=[spec, spec, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, None], tf.bool)],
        reduce_retracing=True,
    )
    def step(qi, qm, pos, excl):
        with tf.GradientTape() as tape:
            qv = encoder.embed_tokens(qi, qm, training=True)  # (batch, dim)
            loss = bank_loss(qv, bank_t, pos, excl, scale=scale)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    history: list[dict[str, float]] = []
    best_score = validate() if validate is not None else -np.inf
    best_weights = encoder.backbone.get_weights()
    logger.info("question-tower fine-tune: validation before training %.4f", best_score)
    stale = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(questions))
        losses = []
        bar = tqdm(range(0, len(order), batch_size), desc=f"fine-tune epoch {epoch}/{epochs}", unit="batch")
        for start in bar:
            rows = order[start : start + batch_size]
            qi, qm = encoder.pad([q_tokens[i] for i in rows])
            losses.append(float(step(qi, qm, positives[rows].astype(np.int32), excluded(rows))))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        record = {"epoch": epoch, "loss": float(np.mean(losses))}
        if validate is not None:
            record["validation"] = validate()
            if record["validation"] > best_score:
                best_score, best_weights, stale = record["validation"], encoder.backbone.get_weights(), 0
            else:
                stale += 1
        logger.info("fine-tune epoch %d: %s", epoch, record)
        history.append(record)
        if stale >= patience:
            break
    encoder.backbone.set_weights(best_weights)
    return history


def train_query_adapter(
    questions: np.ndarray,
    positives: np.ndarray,
    bank: np.ndarray,
    excluded: Callable[[np.ndarray], np.ndarray],
    validate: Callable[[np.ndarray], float],
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    l2: float = 0.1,
    scale: float = 20.0,
    seed: int = 0,
    patience: int = 5,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Learn a linear map on precomputed question vectors (see retrieval_service.adapter).

    The loss is `bank_loss` (every training answer a negative) plus `l2 * ||W - I||^2`, which keeps
    the map near the identity. The best epoch by `validate(W)` wins, the identity included.

    Args:
        questions: (n, dim) L2-normalised question vectors from the frozen encoder.
        positives: (n,) bank row of each question's answer.
        bank: (n_bank, dim) answer vectors.
        excluded: maps a batch of question indices to its (batch, n_bank) false-negative mask.
        validate: scores a candidate matrix (higher is better).

    Returns:
        The (dim, dim) matrix and one history record per epoch.
    """
    dim = questions.shape[1]
    rng = np.random.default_rng(seed)
    identity = tf.eye(dim)
    matrix = tf.Variable(tf.eye(dim))
    optimizer = keras.optimizers.Adam(learning_rate)
    bank_t = tf.constant(bank, dtype=tf.float32)

    @tf.function(reduce_retracing=True)
    def step(q, pos, excl):
        with tf.GradientTape() as tape:
            mapped = tf.math.l2_normalize(tf.matmul(q, matrix), axis=-1)  # (batch, dim)
            loss = bank_loss(mapped, bank_t, pos, excl, scale=scale) + l2 * tf.reduce_sum((matrix - identity) ** 2)
        optimizer.apply_gradients([(tape.gradient(loss, matrix), matrix)])
        return loss

    best_score, best, stale = validate(np.eye(dim, dtype=np.float32)), np.eye(dim, dtype=np.float32), 0
    history: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        losses = [
            float(step(tf.constant(questions[rows]), tf.constant(positives[rows], tf.int32), tf.constant(excluded(rows))))
            for rows in np.array_split(rng.permutation(len(questions)), max(1, len(questions) // batch_size))
        ]
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "validation": validate(matrix.numpy())}
        history.append(record)
        if record["validation"] > best_score:
            best_score, best, stale = record["validation"], matrix.numpy().copy(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    logger.info("query adapter: best validation %.4f after %d epochs", best_score, len(history))
    return best, history
