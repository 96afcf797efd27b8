"""Noise kinds have the right statistics and land at the requested SNR."""

import numpy as np
import pytest
from scipy import signal as sps
from scipy import stats

from drsn_edge.errors import UserError
from training import noise


def clean_rows(n=12, length=1024, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    amp = rng.uniform(0.1, 5.0, (n, 1))
    return (amp * np.sin(2 * np.pi * rng.uniform(0.01, 0.2, (n, 1)) * t)).astype(np.float32)


@pytest.mark.parametrize("kind", noise.KINDS)
@pytest.mark.parametrize("target", [-5.0, 0.0, 10.0])
def test_every_row_lands_within_a_hundredth_db_of_the_target_snr(kind, target):
    clean = clean_rows()
    noisy = noise.add(clean, target, kind, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    snr = noise.snr_db(clean, noisy)
    assert np.abs(snr - target).max() < 0.01


def test_per_row_snr_and_per_row_kind_are_honoured():
    clean = clean_rows(n=6)
    target = np.array([-5, 0, 5, 10, -5, 10], dtype=float)
    kinds = np.array(["gaussian", "pink", "laplacian", "pink", "laplacian", "gaussian"])
    noisy = noise.add(clean, target, kinds, np.random.default_rng(2))
    np.testing.assert_allclose(noise.snr_db(clean, noisy), target, atol=0.01)


def test_same_rng_seed_gives_identical_noise():
    clean = clean_rows(n=4)
    a = noise.add(clean, 0.0, "pink", np.random.default_rng(5))
    b = noise.add(clean, 0.0, "pink", np.random.default_rng(5))
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", noise.KINDS)
def test_made_noise_has_unit_variance_and_zero_mean(kind):
    x = noise.make(kind, (50, 2048), np.random.default_rng(3))
    assert x.shape == (50, 2048)
    assert x.var() == pytest.approx(1.0, abs=0.05)
    assert abs(x.mean()) < 0.05


def test_pink_noise_psd_falls_as_one_over_f():
    x = noise.make("pink", (64, 8192), np.random.default_rng(4))
    f, psd = sps.welch(x, fs=1.0, nperseg=1024, axis=-1)
    band = (f >= 0.005) & (f <= 0.25)
    slope = np.polyfit(np.log10(f[band]), np.log10(psd.mean(axis=0)[band]), 1)[0]
    print(f"pink PSD log-log slope: {slope:.3f}")
    assert -1.2 < slope < -0.8


def test_pink_noise_has_no_dc():
    x = noise.make("pink", (8, 1000), np.random.default_rng(6))
    assert np.abs(x.mean(axis=1)).max() < 1e-9


def test_laplacian_kurtosis_is_six_and_gaussian_three():
    rng = np.random.default_rng(7)
    lap = stats.kurtosis(noise.make("laplacian", 400_000, rng), fisher=False)
    gau = stats.kurtosis(noise.make("gaussian", 400_000, rng), fisher=False)
    print(f"kurtosis laplacian {lap:.2f}, gaussian {gau:.2f}")
    assert 5.0 < lap < 7.0
    assert 2.9 < gau < 3.1


def test_unknown_kind_is_a_user_error_listing_the_valid_kinds():
    with pytest.raises(UserError, match=r"'brown'.*gaussian, pink, laplacian"):
        noise.make("brown", (2, 8), np.random.default_rng(0))
    with pytest.raises(UserError, match="'white'"):
        noise.add(clean_rows(n=2), 0.0, np.array(["pink", "white"]), np.random.default_rng(0))
