"""What a MiniLM cross-encoder ("precise mode") would cost on this CPU: the measurement behind the README.

A cross-encoder reads question and answer together: every candidate is a full MiniLM pass over
~150 tokens, per request, and training back-propagates through all six layers. This times both on
real ELI5 pairs (eval titles with their retrieved-looking answers, lengths as the data has them) and
projects what the issue's budgets allow: the 45-minute 2-core training job and a request's latency.

    .venv/bin/python scripts/cross_encoder_cost.py [--pairs 64] [--max-length 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from retrieval_service.encoder import SentenceEncoder  # noqa: E402
from training import data as qa_data  # noqa: E402
from training.config import DEFAULT_DATA_DIR  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64, help="question/answer pairs timed per mode")
    parser.add_argument("--batch", type=int, default=10, help="pairs per call (one request's top-10)")
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()

    pairs = qa_data.load_pairs([str(DEFAULT_DATA_DIR / "dev.jsonl")])
    rng = np.random.default_rng(0)
    picks = rng.choice(len(pairs), size=args.pairs, replace=False)
    answers_for = rng.permutation(picks)  # a question with some other answer: a realistic candidate
    encoder = SentenceEncoder.pretrained(max_length=args.max_length)
    backbone = encoder.backbone
    encodings = encoder.tokenizer.encode_batch(  # truncated to --max-length, as the encoder set it up
        [(pairs[i].question, pairs[j].answer.text) for i, j in zip(picks, answers_for)])
    lengths = [len(e.ids) for e in encodings]
    head = keras.layers.Dense(1)

    def batches(start: int):
        """One request's pairs, longest first, cut into sub-batches of similar length (as the encoder does)."""
        group = encodings[start : start + args.batch]
        return [padded([group[i] for i in rows]) for rows in encoder.length_batches([e.ids for e in group], args.batch)]

    def padded(group):
        width = max(len(e.ids) for e in group)
        ids = np.zeros((len(group), width), np.int32)
        seg = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for r, e in enumerate(group):
            ids[r, : len(e.ids)], seg[r, : len(e.ids)], mask[r, : len(e.ids)] = e.ids, e.type_ids, 1
        return tf.constant(ids), tf.constant(seg), tf.constant(mask)

    @tf.function(reduce_retracing=True)
    def score(ids, seg, mask):
        out = backbone({"token_ids": ids, "segment_ids": seg, "padding_mask": mask})["pooled_output"]
        return head(out)

    optimizer = keras.optimizers.Adam(2e-5)

    @tf.function(reduce_retracing=True)
    def train_step(ids, seg, mask):
        with tf.GradientTape() as tape:
            logits = tf.squeeze(head(backbone({"token_ids": ids, "segment_ids": seg, "padding_mask": mask},
                                              training=True)["pooled_output"]), -1)
            loss = tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(0, tf.shape(logits)[0]), logits)
        variables = backbone.trainable_variables + head.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def timed(fn) -> float:
        for s in range(0, args.pairs, args.batch):  # trace every shape once, untimed
            for b in batches(s):
                fn(*b)
        start = time.perf_counter()
        for s in range(0, args.pairs, args.batch):
            for b in batches(s):
                fn(*b)
        return (time.perf_counter() - start) / args.pairs * 1000  # ms per pair

    infer_ms = timed(score)
    train_ms = timed(train_step)
    budget_pairs = 30 * 60 * 1000 / train_ms
    print(f"pairs: {args.pairs}, tokens per pair: mean {np.mean(lengths):.0f}, median {np.median(lengths):.0f}; "
          f"{os.cpu_count()} CPUs, batch {args.batch}")
    print(f"inference: {infer_ms:.1f} ms per pair -> top-10 rerank {10 * infer_ms:.0f} ms, top-100 {100 * infer_ms:.0f} ms per request")
    print(f"training (forward + backward + Adam): {train_ms:.1f} ms per pair -> {budget_pairs:,.0f} pairs in 30 minutes "
          f"(e.g. {budget_pairs / 8:,.0f} questions with 1 positive + 7 hard negatives, one epoch)")


if __name__ == "__main__":
    main()
