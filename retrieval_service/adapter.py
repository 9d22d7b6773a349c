"""An optional learned linear map on question vectors (the "query adapter"), saved with the encoder.

Training the whole question encoder on a few thousand ELI5 pairs overfits (all-MiniLM-L6-v2 already
saw ELI5 among its training pairs); a 384 x 384 map, initialised at the identity and pulled back
towards it, adapts the question space to the corpus without that. Answers are never mapped, so the
answer index built with the plain encoder stays valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retrieval_service.encoder import SentenceEncoder, TextEncoder

ADAPTER_FILE = "query_adapter.npy"


def adapt(vectors: npt.NDArray[np.float32], matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Map (n, dim) question vectors and L2-normalise them again."""
    mapped = vectors @ matrix  # (n, dim)
    return (mapped / np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class AdaptedEncoder:
    """A `TextEncoder` for questions: the sentence encoder followed by the query adapter."""

    def __init__(self, encoder: SentenceEncoder, matrix: npt.NDArray[np.float32]):
        if matrix.shape != (encoder.dim, encoder.dim):
            raise ValueError(f"query adapter has shape {matrix.shape}, encoder dim is {encoder.dim}")
        self.encoder = encoder
        self.matrix = matrix.astype(np.float32)
        self.dim = encoder.dim

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool | Callable[[int], None] = False
    ) -> npt.NDArray[np.float32]:
        return adapt(self.encoder.encode(texts, batch_size=batch_size, progress=progress), self.matrix)


def load_question_encoder(directory: Path) -> TextEncoder:
    """The bundle's question encoder: with its adapter when the bundle has one."""
    encoder = SentenceEncoder.load(directory)
    adapter = Path(directory) / ADAPTER_FILE
    return AdaptedEncoder(encoder, np.load(adapter)) if adapter.is_file() else encoder
