"""The query adapter: a linear map on question vectors, loaded with the bundle's encoder."""

import numpy as np
import pytest

from retrieval_service.adapter import ADAPTER_FILE, AdaptedEncoder, adapt, load_question_encoder
from retrieval_service.encoder import SentenceEncoder


def test_adapt_maps_and_renormalises():
    vectors = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    swap = np.array([[0.0, 2.0], [2.0, 0.0]], dtype=np.float32)
    out = adapt(vectors, swap)
    assert np.allclose(out, [[0.0, 1.0], [0.8, 0.6]])
    assert np.allclose(adapt(vectors, np.eye(2, dtype=np.float32)), vectors)


@pytest.mark.slow
def test_bundle_encoder_loads_with_and_without_adapter(tiny_bundle, tmp_path):
    plain = load_question_encoder(tiny_bundle / "encoder")
    assert isinstance(plain, SentenceEncoder)
    adapted_dir = tmp_path / "encoder"
    adapted_dir.mkdir()
    for item in (tiny_bundle / "encoder").iterdir():
        (adapted_dir / item.name).symlink_to(item)
    flip = -np.eye(plain.dim, dtype=np.float32)
    np.save(adapted_dir / ADAPTER_FILE, flip)
    adapted = load_question_encoder(adapted_dir)
    assert isinstance(adapted, AdaptedEncoder)
    questions = ["Why is the sky blue?", "How do bees make honey?"]
    assert np.allclose(adapted.encode(questions), -plain.encode(questions), atol=1e-6)


@pytest.mark.slow
def test_adapter_shape_must_match_the_encoder(tiny_bundle):
    with pytest.raises(ValueError, match="shape"):
        AdaptedEncoder(load_question_encoder(tiny_bundle / "encoder"), np.eye(3, dtype=np.float32))
