"""The shrinkage math, the threshold bounds, the architectures and their size on a MCU."""

import numpy as np
import pytest

from drsn_edge import config
from drsn_edge.errors import UserError
from training import models


def soft_threshold_reference(x, tau):
    return np.sign(x) * np.maximum(np.abs(x) - tau, 0.0)


@pytest.fixture(scope="module")
def default_model_cfg():
    return config.load()["model"]


def test_soft_threshold_matches_numpy_formula():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((4, 32, 8)).astype(np.float32) * 3
    tau = np.abs(rng.standard_normal((4, 1, 8))).astype(np.float32)
    # exact zeros and values sitting right at +-tau are the edge cases of the piecewise form
    r[0, 0, :] = 0.0
    r[1, 1, :] = tau[1, 0, :]
    r[2, 2, :] = -tau[2, 0, :]
    y = np.asarray(models.SoftThreshold()(r, tau))
    np.testing.assert_allclose(y, soft_threshold_reference(r, tau), atol=1e-6)
    # inside the dead band everything is exactly zero; outside, magnitudes shrink by tau
    inside = np.abs(r) <= tau
    assert np.all(y[inside] == 0)
    np.testing.assert_allclose(np.abs(y[~inside]), (np.abs(r) - tau)[~inside], atol=1e-5)


def test_soft_threshold_with_shared_tau_broadcasts_over_channels():
    rng = np.random.default_rng(1)
    r = rng.standard_normal((2, 16, 5)).astype(np.float32)
    tau = np.full((2, 1, 1), 0.7, np.float32)
    y = np.asarray(models.SoftThreshold()(r, tau))
    np.testing.assert_allclose(y, soft_threshold_reference(r, tau), atol=1e-6)


@pytest.mark.parametrize("arch", ["drsn_cw", "drsn_cs"])
def test_thresholds_are_positive_and_below_mean_abs_per_channel(arch, default_model_cfg):
    model = models.build(arch, 256, 10, default_model_cfg)
    x = np.random.default_rng(2).standard_normal((8, 256, 1)).astype(np.float32)
    for unit in range(1, len(default_model_cfg["blocks"]) + 1):
        r, tau = (np.asarray(t) for t in models.tau_model(model, unit)(x))
        mean_abs = np.mean(np.abs(r), axis=1, keepdims=True)           # [B, 1, C]
        if arch == "drsn_cs":
            mean_abs = np.mean(mean_abs, axis=2, keepdims=True)        # one value per sample
            assert tau.shape == (8, 1, 1)
        else:
            assert tau.shape == (8, 1, r.shape[-1])
        assert np.all(tau >= 0)
        assert np.all(tau <= mean_abs + 1e-6)
        # per-sample: different inputs get different thresholds
        assert np.std(tau[:, 0, 0]) > 0


def test_default_drsn_fits_the_mcu_budget(default_model_cfg):
    model = models.build("drsn_cw", 1024, 10, default_model_cfg)
    assert models.weight_bytes_int8(model) <= 64 * 1024
    assert models.activation_peak_bytes(model) <= 32 * 1024
    m = models.macs(model)
    assert m["total"] == m["conv"] + m["dense"] > 0


def test_baseline_resnet_has_same_trunk_without_shrinkage(default_model_cfg):
    drsn = models.build("drsn_cw", 512, 10, default_model_cfg)
    resnet = models.build("resnet", 512, 10, default_model_cfg)
    assert models.macs(drsn)["conv"] == models.macs(resnet)["conv"]
    assert not any(isinstance(layer, models.SoftThreshold) for layer in resnet.layers)
    assert sum(isinstance(layer, models.SoftThreshold) for layer in drsn.layers) == len(default_model_cfg["blocks"])


def test_unknown_architecture_is_a_user_error(default_model_cfg):
    with pytest.raises(UserError, match="drsn_cw, drsn_cs, resnet"):
        models.build("vgg", 512, 10, default_model_cfg)
