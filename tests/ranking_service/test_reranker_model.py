"""The Keras reranker: starts as the retrieval order, serialises, validates its arguments."""

import numpy as np
import pytest

from ranking_service.features import FEATURE_NAMES
from ranking_service.model import Reranker, load_reranker

F = len(FEATURE_NAMES)


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    return {
        "features": rng.normal(size=(2, 6, F)).astype(np.float32),
        "question": rng.normal(size=(2, 8)).astype(np.float32),
        "answers": rng.normal(size=(2, 6, 8)).astype(np.float32),
    }


def test_untrained_model_keeps_the_retrieval_order(inputs):
    model = Reranker(num_features=F, embedding_dim=8)
    model.adapt(inputs["features"])
    scores = model(inputs).numpy()  # (2, 6)
    dense = inputs["features"][..., FEATURE_NAMES.index("dense_score")]
    assert (np.argsort(-scores, axis=1) == np.argsort(-dense, axis=1)).all()


def test_save_load_round_trip(inputs, tmp_path):
    model = Reranker(num_features=F, embedding_dim=8, projection_dim=4, hidden_units=16)
    model.adapt(inputs["features"])
    model(inputs)
    # Move the weights off their initial values so the round trip is meaningful.
    rng = np.random.default_rng(1)
    for variable in model.trainable_weights:
        variable.assign(variable.numpy() + 0.01 * rng.normal(size=variable.shape))
    model.save(tmp_path / "reranker.keras")
    loaded = load_reranker(tmp_path / "reranker.keras")
    assert loaded.get_config()["projection_dim"] == 4
    assert np.allclose(loaded(inputs).numpy(), model(inputs).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_features": 0}, "num_features"), ({"projection_dim": 0}, "projection_dim"), ({"dropout": 1.0}, "dropout")],
)
def test_rejects_bad_arguments(kwargs, name):
    args = {"num_features": F, "embedding_dim": 8, **kwargs}
    with pytest.raises(ValueError, match=name):
        Reranker(**args)
