"""Evaluation's batched predictions are model.predict's, batch boundaries included."""

from __future__ import annotations

import numpy as np


def test_batched_predictions_equal_predict():
    from pipeline.models import create_model
    from pipeline.train.evaluation import predict_probs, prob_sums

    model = create_model("conv4", image_size=8, classes=10, seed=2)
    x = np.random.default_rng(0).integers(0, 256, (11, 8, 8, 3)).astype(np.uint8)
    expected = model.predict(x.astype(np.float32), batch_size=4, verbose=0)
    got = predict_probs(model, x, batch_size=4)  # batches of 4, 4 and 3
    assert got.shape == (11, 10) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected.astype(np.float64))
    y = expected.argmax(axis=1)
    sums = prob_sums(predict_probs(model, x, batch_size=4), y)
    assert sums[0] == 11 and sums[1] == 11 and sums[2] == 11
