"""The contrastive loss: in-batch negatives with false-negative masking."""

import numpy as np
import pytest
import tensorflow as tf

from training.finetune import bank_loss, false_negative_mask, mnrl_loss


def unit(rows):
    x = np.asarray(rows, dtype=np.float32)
    return tf.constant(x / np.linalg.norm(x, axis=1, keepdims=True))


def test_mask_marks_shared_answers_and_duplicate_questions():
    mask = false_negative_mask(["a", "b", "a", "c"], ["q1", "q2", "q3", "q2"])
    expected = np.array(
        [[1, 0, 1, 0],
         [0, 1, 0, 1],
         [1, 0, 1, 0],
         [0, 1, 0, 1]], dtype=bool)
    assert (mask == expected).all()


def test_masked_duplicate_is_not_a_negative():
    # Pairs 0 and 2 share one answer: without masking, question 0 is pushed away from answer 2,
    # which is its own answer too.
    q = unit([[1, 0, 0], [0, 1, 0], [1, 0, 0.01]])
    a = unit([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    no_mask = tf.constant(np.eye(3, dtype=bool))
    mask = tf.constant(false_negative_mask(["x", "y", "x"], ["q0", "q1", "q2"]))
    unmasked = float(mnrl_loss(q, a, no_mask, scale=20.0, symmetric=False))
    masked = float(mnrl_loss(q, a, mask, scale=20.0, symmetric=False))
    # Hand computation for the masked case: each row's only remaining negative is orthogonal.
    logits = 20.0 * (q.numpy() @ a.numpy().T)
    expected = np.mean([
        -logits[0, 0] + np.log(np.exp(logits[0, 0]) + np.exp(logits[0, 1])),
        -logits[1, 1] + np.log(np.exp(logits[1, 0]) + np.exp(logits[1, 1]) + np.exp(logits[1, 2])),
        -logits[2, 2] + np.log(np.exp(logits[2, 1]) + np.exp(logits[2, 2])),
    ])
    assert masked == pytest.approx(expected, rel=1e-5)
    # Unmasked, rows 0 and 2 each split their probability between two identical answers: log 2.
    assert unmasked == pytest.approx(2 * np.log(2) / 3, rel=1e-3)


def test_symmetric_loss_averages_both_directions():
    q = unit([[1, 0.2], [0.1, 1]])
    a = unit([[1, 0], [0, 1]])
    mask = tf.constant(np.eye(2, dtype=bool))
    one_way = float(mnrl_loss(q, a, mask, symmetric=False))
    reverse = float(mnrl_loss(a, q, mask, symmetric=False))
    assert float(mnrl_loss(q, a, mask, symmetric=True)) == pytest.approx((one_way + reverse) / 2, rel=1e-5)


def test_bank_loss_masks_excluded_rows_but_never_the_positive():
    q = unit([[1, 0, 0], [0, 1, 0]])
    bank = unit([[1, 0, 0], [0, 1, 0], [1, 0, 0.01]])  # row 2 is a near-copy of row 0
    positives = tf.constant([0, 1])
    excluded = tf.constant([[True, False, True], [False, True, False]])  # row 0's own answer is "excluded" too
    logits = 20.0 * (q.numpy() @ bank.numpy().T)
    expected = np.mean([
        -logits[0, 0] + np.log(np.exp(logits[0, 0]) + np.exp(logits[0, 1])),
        -logits[1, 1] + np.log(np.exp(logits[1]).sum()),
    ])
    assert float(bank_loss(q, bank, positives, excluded)) == pytest.approx(expected, rel=1e-5)
    unmasked = float(bank_loss(q, bank, positives, tf.zeros((2, 3), tf.bool)))
    assert unmasked > float(bank_loss(q, bank, positives, excluded)) + 0.2


def test_query_adapter_learns_a_rotation_and_keeps_the_best_epoch():
    from training.finetune import train_query_adapter

    rng = np.random.default_rng(0)
    answers = rng.normal(size=(40, 8)).astype(np.float32)
    answers /= np.linalg.norm(answers, axis=1, keepdims=True)
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
    questions = answers @ rotation.T  # question i is answer i rotated: the identity map ranks badly
    positives = np.arange(40)

    def top1(matrix):
        mapped = questions @ matrix
        return float((np.argmax(mapped @ answers.T, axis=1) == positives).mean())

    no_exclusions = lambda rows: np.zeros((len(rows), 40), dtype=bool)  # noqa: E731
    matrix, history = train_query_adapter(questions, positives, answers, no_exclusions, top1, epochs=60,
                                          batch_size=10, learning_rate=0.05, l2=0.0, patience=60)
    assert top1(matrix) > top1(np.eye(8, dtype=np.float32)) + 0.3
    assert top1(matrix) == max(h["validation"] for h in history)


def test_query_adapter_stays_identity_when_validation_never_improves():
    from training.finetune import train_query_adapter

    questions = np.eye(4, dtype=np.float32)
    matrix, history = train_query_adapter(questions, np.arange(4), questions, lambda r: np.zeros((len(r), 4), bool),
                                          validate=lambda m: 0.0, epochs=10, batch_size=2, patience=3)
    assert np.array_equal(matrix, np.eye(4, dtype=np.float32)) and len(history) == 3
