"""The synthetic bearing data: reproducible, physically plausible, and not trivially easy."""

import numpy as np
import pytest
from scipy import signal as sps

from training import signals

FS = 12000.0


def test_same_seed_gives_identical_bytes_and_other_seed_differs():
    a = signals.generate(3, 512, FS, seed=11)
    np.random.seed(123)  # the global numpy state must not leak in
    np.random.standard_normal(10)
    b = signals.generate(3, 512, FS, seed=11)
    c = signals.generate(3, 512, FS, seed=12)
    assert a[0].tobytes() == b[0].tobytes()
    assert a[1].tobytes() == b[1].tobytes()
    assert all(np.array_equal(a[2][k], b[2][k]) for k in a[2])
    assert a[0].tobytes() != c[0].tobytes()


def test_shapes_dtypes_and_class_major_labels_cover_all_ten_classes():
    x, y, meta = signals.generate(4, 256, FS, seed=1)
    assert len(signals.CLASSES) == 10 and signals.CLASSES[0] == "normal"
    assert x.shape == (40, 256) and x.dtype == np.float32
    assert y.shape == (40,) and y.dtype == np.int64
    assert y.tolist() == [c for c in range(10) for _ in range(4)]
    assert np.isfinite(x).all()
    for key in ("shaft_hz", "load_hp", "fault_hz", "severity_mils", "resonance_hz"):
        assert meta[key].shape == (40,)
    rpm = meta["shaft_hz"] * 60
    assert rpm.min() >= 1720 and rpm.max() <= 1800
    assert np.all(meta["fault_hz"][y == 0] == 0) and np.all(meta["fault_hz"][y > 0] > 90)
    assert sorted(set(meta["severity_mils"].tolist())) == [0, 7, 14, 21]


def test_fault_orders_match_the_published_6205_values():
    o = signals.fault_orders()
    # CWRU's table for the 6205-2RS drive-end bearing (BSF there is 2x the ball spin).
    assert o["bpfi"] == pytest.approx(5.4152, abs=2e-3)
    assert o["bpfo"] == pytest.approx(3.5848, abs=2e-3)
    assert o["ftf"] == pytest.approx(0.39828, abs=2e-4)
    assert 2 * o["bsf"] == pytest.approx(4.7135, abs=2e-3)
    f = signals.fault_frequencies(np.array([29.95, 28.7]))
    assert f["bpfo"] == pytest.approx([107.36, 102.88], abs=0.05)


def test_window_metadata_uses_the_geometry_at_that_windows_speed():
    x, y, meta = signals.generate(5, 256, FS, seed=2)
    f = signals.fault_frequencies(meta["shaft_hz"])
    for name, key in (("inner_race_014", "bpfi"), ("ball_021", "ball_impacts"),
                      ("outer_race_007", "bpfo")):
        rows = y == signals.CLASSES.index(name)
        np.testing.assert_allclose(meta["fault_hz"][rows], f[key][rows], rtol=1e-12)


def envelope_peak(x, fs):
    """Frequency and prominence (peak / band median) of the envelope spectrum, 60-250 Hz."""
    sos = sps.butter(4, [2000, 5500], btype="bandpass", fs=fs, output="sos")
    env = np.abs(sps.hilbert(sps.sosfiltfilt(sos, x.astype(np.float64))))
    env -= env.mean()
    n = 8 * len(x)
    spec = np.abs(np.fft.rfft(env * np.hanning(len(x)), n))
    freqs = np.fft.rfftfreq(n, 1 / fs)
    band = (freqs >= 60) & (freqs <= 250)
    k = np.argmax(np.where(band, spec, 0))
    return freqs[k], spec[k] / np.median(spec[band])


@pytest.mark.parametrize("name,key", [("outer_race_014", "bpfo"), ("inner_race_007", "bpfi"),
                                      ("ball_021", "ball_impacts")])
def test_envelope_spectrum_peaks_at_the_geometric_fault_frequency(name, key):
    x, y, meta = signals.generate(3, 8192, FS, seed=5)
    expected = signals.fault_frequencies(meta["shaft_hz"])[key]
    for i in np.flatnonzero(y == signals.CLASSES.index(name)):
        peak, prominence = envelope_peak(x[i], FS)
        print(f"{name}: envelope peak {peak:.1f} Hz, geometry {expected[i]:.1f} Hz, "
              f"prominence {prominence:.1f}")
        assert peak == pytest.approx(expected[i], rel=0.02)
        assert prominence > 6


def test_normal_bearing_has_no_envelope_peak():
    x, y, _ = signals.generate(3, 8192, FS, seed=5)
    for i in np.flatnonzero(y == 0):
        _, prominence = envelope_peak(x[i], FS)
        assert prominence < 4.5


def test_bigger_defects_hit_harder_on_average_but_ranges_overlap():
    _, y, meta = signals.generate(200, 256, FS, seed=3)
    amp = {m: meta["impact_amplitude"][(meta["severity_mils"] == m)] for m in (7, 14, 21)}
    assert amp[7].mean() < amp[14].mean() < amp[21].mean()
    assert amp[7].max() > amp[14].min() and amp[14].max() > amp[21].min()


def test_linear_spectral_baseline_beats_chance_but_is_far_from_perfect():
    x_train, y_train, _ = signals.generate(120, 1024, FS, seed=21)
    x_test, y_test, _ = signals.generate(40, 1024, FS, seed=22)
    acc = signals.spectral_baseline(x_train, y_train, x_test, y_test)
    print(f"spectral baseline accuracy on clean data: {acc:.3f}")
    assert 0.35 < acc < 0.92


def test_impossible_sizes_are_user_errors_naming_the_setting():
    with pytest.raises(signals.UserError, match="at least 1"):
        signals.generate(0, 1024, FS, seed=1)
    with pytest.raises(signals.UserError, match=r"data\.window = 32"):
        signals.generate(2, 32, FS, seed=1)
