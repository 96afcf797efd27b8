"""Synthetic bearing vibration, seeded and bit-reproducible.

Ten classes in the style of the CWRU bearing data set: a healthy bearing and faults on the
inner race, a ball and the outer race, each at three defect diameters (7, 14, 21 mils).
A fault makes a train of impacts at the fault's characteristic frequency, which follows from
the bearing geometry and the shaft speed of each window; every impact rings the housing's
structural resonances. The nuisances that make real data hard are here as well: the speed
and load change from window to window, the resonances drift, the impact spacing slips, the
load zone modulates inner-race and ball impacts, and the severities overlap in amplitude.

**Operating conditions.** Like a real test rig, the generator runs at a few motor loads
(`LOAD_RPM`: 0-3 HP, 1797-1730 rpm). A condition fixes more than the speed: where the
housing modes sit and how damped they are (the transfer path from the bearing to the
sensor), the sensor's response slope, how hard impacts hit and how deep the load zone
modulates them. These are drawn once per rig (`rig_seed`) and condition, so windows of one
condition share them and windows of another do not: a model that learned one condition's
transfer path instead of the fault drops on a condition it never saw, as on real rigs.

`spectral_baseline` measures how hard the classes are for a linear model on the spectrum.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError

CLASSES: list[str] = [
    "normal",
    "inner_race_007", "inner_race_014", "inner_race_021",
    "ball_007", "ball_014", "ball_021",
    "outer_race_007", "outer_race_014", "outer_race_021",
]

# SKF 6205-2RS JEM, the drive-end bearing of the CWRU rig.
BEARING = {
    "balls": 9,
    "ball_diameter_mm": 7.94,
    "pitch_diameter_mm": 39.04,
    "contact_angle_deg": 0.0,
}

MIL_MM = 0.0254

# Motor load (HP) -> nominal shaft speed (rpm), as measured on the CWRU rig.
LOAD_RPM = {0: 1797.0, 1: 1772.0, 2: 1750.0, 3: 1730.0}
LOADS = tuple(LOAD_RPM)


def rpm_at(load: float) -> float:
    """Nominal speed at a load, interpolated between the rig's measured points."""
    loads = np.array(LOADS, dtype=np.float64)
    return float(np.interp(load, loads, [LOAD_RPM[k] for k in LOADS]))


def condition(load: float, rig_seed: int) -> dict:
    """What the rig looks like at one load: fixed per (rig, load), shared by its windows."""
    rng = np.random.default_rng([int(rig_seed) & 0xFFFFFFFF, 7919, int(round(float(load) * 100))])
    return {
        "load_hp": float(load),
        "rpm": rpm_at(load),
        # The transfer path: housing modes shift a few percent with the mounting, the
        # temperature and the preload that comes with the load.
        "mode_shift": rng.uniform(0.95, 1.05, 2),
        "damping": rng.uniform(0.035, 0.065),
        # Sensor and mounting response: a slope in dB per octave around 3 kHz.
        "tilt_db_per_octave": rng.uniform(-2.0, 2.0),
        # Impacts grow with load, the load zone narrows (deeper modulation).
        "impact_gain": (1.0 + 0.22 * float(load)) * np.exp(rng.normal(0.0, 0.1)),
        "zone_floor": (max(0.05, 0.42 - 0.09 * float(load) + rng.uniform(-0.04, 0.04))),
        "background": np.exp(rng.normal(0.0, 0.15)),
    }

# Per fault location: mean impact strength at the sensor (inner-race and ball impacts cross
# more interfaces on their way out) and the range of the second mode's share.
_LOCATION = {
    "inner_race": {"gain": 0.75, "mode2": (0.35, 0.85)},
    "ball": {"gain": 0.55, "mode2": (0.30, 0.80)},
    "outer_race": {"gain": 1.00, "mode2": (0.45, 0.95)},
}

# Per defect diameter: impact amplitude and force-pulse width ranges, deliberately overlapping
# so that no single window feature tells the severities apart.
_SEVERITY = {
    7: {"amp": (0.45, 1.00), "pulse_us": (15.0, 40.0)},
    14: {"amp": (0.75, 1.45), "pulse_us": (30.0, 60.0)},
    21: {"amp": (1.05, 1.95), "pulse_us": (45.0, 80.0)},
}


def parse_class(name: str) -> tuple[str, int]:
    """'inner_race_014' -> ('inner_race', 14); 'normal' -> ('normal', 0)."""
    if name == "normal":
        return "normal", 0
    location, mils = name.rsplit("_", 1)
    return location, int(mils)


def fault_orders() -> dict[str, float]:
    """Characteristic frequencies as multiples of the shaft rate (orders)."""
    n = BEARING["balls"]
    ratio = BEARING["ball_diameter_mm"] / BEARING["pitch_diameter_mm"]
    cos_a = np.cos(np.deg2rad(BEARING["contact_angle_deg"]))
    return {
        "ftf": 0.5 * (1 - ratio * cos_a),
        "bpfo": 0.5 * n * (1 - ratio * cos_a),
        "bpfi": 0.5 * n * (1 + ratio * cos_a),
        "bsf": 0.5 / ratio * (1 - (ratio * cos_a) ** 2),
    }


def fault_frequencies(shaft_hz):
    """BPFO, BPFI, BSF and FTF in Hz for a shaft rate in Hz (scalar or array).

    A spall on a ball strikes both races once per spin revolution, so ball-fault impacts
    repeat at 2 x BSF ("ball_impacts" here).
    """
    orders = fault_orders()
    out = {k: np.asarray(shaft_hz, dtype=np.float64) * v for k, v in orders.items()}
    out["ball_impacts"] = 2.0 * out["bsf"]
    return out


def _impact_rate(location: str, shaft_hz: np.ndarray) -> np.ndarray:
    f = fault_frequencies(shaft_hz)
    return {"inner_race": f["bpfi"], "ball": f["ball_impacts"], "outer_race": f["bpfo"]}[location]


def _rolling_speed_m_s(location: str, shaft_hz: np.ndarray) -> np.ndarray:
    # Speed at which the defect edge passes under the contact: sets the time between the
    # ball entering the spall and striking its far edge.
    o = fault_orders()
    d = BEARING["ball_diameter_mm"] * 1e-3
    dp = BEARING["pitch_diameter_mm"] * 1e-3
    if location == "outer_race":
        return np.pi * o["ftf"] * shaft_hz * (dp + d)
    if location == "inner_race":
        return np.pi * (1 - o["ftf"]) * shaft_hz * (dp - d)
    return np.pi * d * o["bsf"] * shaft_hz


def _load_zone(theta: np.ndarray, floor: np.ndarray) -> np.ndarray:
    # Stribeck load distribution with half the bearing loaded, plus a floor because unloaded
    # rolling elements still touch the races (preload, centrifugal force).
    q = np.clip(np.cos(theta), 0.0, None) ** 1.5
    return floor + (1.0 - floor) * q


def _resonance(freqs: np.ndarray, fn: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    # Second-order band-pass with unit gain at fn: the acceleration a lightly damped mode
    # shows at the sensor after a force impulse.
    r = freqs[None, :] / fn[:, None]
    two_z_r = 2j * zeta[:, None] * r
    return two_z_r / (1.0 - r**2 + two_z_r)


def _per_window(conds: list[dict], which: np.ndarray, key: str, column: int | None = None):
    values = np.array([c[key] if column is None else c[key][column] for c in conds])
    return values[which]


def _class_windows(label: int, n: int, window: int, fs: float, rng: np.random.Generator,
                   conds: list[dict]):
    location, mils = parse_class(CLASSES[label])
    pad = int(np.ceil(0.03 * fs))  # room for ringing from impacts before the window starts
    total = window + pad
    freqs = np.fft.rfftfreq(total, 1.0 / fs)

    # Operating condition of each window: the conditions in turn, so each gets its share.
    which = np.arange(n) % len(conds)
    load = _per_window(conds, which, "load_hp")
    rpm = np.clip(_per_window(conds, which, "rpm") + rng.normal(0.0, 3.0, n), 1720.0, 1800.0)
    shaft_hz = rpm / 60.0

    # Two housing modes where the condition puts them, drifting a little from window to
    # window (temperature). Scaled down when fs is low so they stay below Nyquist.
    scale = min(1.0, 0.42 * fs / 4700.0)
    f1 = 3000.0 * _per_window(conds, which, "mode_shift", 0) * rng.uniform(0.97, 1.03, n) * scale
    f2 = 4300.0 * _per_window(conds, which, "mode_shift", 1) * rng.uniform(0.97, 1.03, n) * scale
    damping = _per_window(conds, which, "damping")
    z1 = damping * rng.uniform(0.85, 1.15, n)
    z2 = damping * rng.uniform(0.85, 1.15, n)
    mode2 = rng.uniform(*_LOCATION.get(location, {"mode2": (0.3, 0.9)})["mode2"], n)
    modes = _resonance(freqs, f1, z1) + mode2[:, None] * _resonance(freqs, f2, z2)

    signal = np.zeros((n, total))
    fault_hz = np.zeros(n)
    amplitude = np.zeros(n)

    if location != "normal":
        sev = _SEVERITY[mils]
        amplitude = (rng.uniform(*sev["amp"], n) * _LOCATION[location]["gain"]
                     * _per_window(conds, which, "impact_gain"))
        pulse_s = rng.uniform(*sev["pulse_us"], n) * 1e-6
        fault_hz = _impact_rate(location, shaft_hz)
        slip = rng.uniform(0.01, 0.02, n)
        # Entry into the spall is a soft step, exit a hard strike; their gap grows with size.
        gap = (mils * MIL_MM * 1e-3 / _rolling_speed_m_s(location, shaft_hz)
               * rng.uniform(0.8, 1.25, n))
        entry = rng.uniform(0.15, 0.45, n)

        period = 1.0 / fault_hz
        k_max = int(np.ceil(total / fs / (period.min() * 0.9))) + 2
        steps = period[:, None] * (1.0 + slip[:, None] * rng.standard_normal((n, k_max)))
        start = rng.uniform(0.0, 1.0, n)[:, None] * period[:, None]  # random phase of the train
        times = start + np.cumsum(steps, axis=1) - steps[:, :1]
        amps = np.exp(rng.normal(0.0, 0.15, (n, k_max)))  # impact-to-impact scatter
        amps[times >= total / fs] = 0.0

        if location in ("inner_race", "ball"):
            # Inner-race defects pass the load zone once per shaft turn, balls once per cage turn.
            carrier = shaft_hz if location == "inner_race" else shaft_hz * fault_orders()["ftf"]
            theta = 2 * np.pi * carrier[:, None] * times + rng.uniform(0, 2 * np.pi, n)[:, None]
            floor = _per_window(conds, which, "zone_floor") * rng.uniform(0.8, 1.2, n)
            amps *= _load_zone(theta, floor[:, None])

        pulse = np.exp(-0.5 * (2 * np.pi * freqs[None, :] * pulse_s[:, None]) ** 2)
        pair = entry[:, None] + np.exp(-2j * np.pi * freqs[None, :] * gap[:, None])
        kernel = modes * pulse * pair
        kernel /= np.abs(np.fft.irfft(kernel, total, axis=1)).max(axis=1, keepdims=True)

        # Impacts placed at exact (sub-sample) times in the frequency domain; chunked to keep
        # the [window, impact, frequency] phase tensor small.
        spectrum = np.empty((n, freqs.size), dtype=np.complex128)
        for lo in range(0, n, 32):
            hi = min(lo + 32, n)
            phase = np.exp(-2j * np.pi * times[lo:hi, :, None] * freqs[None, None, :])
            spectrum[lo:hi] = np.einsum("nk,nkf->nf", amps[lo:hi], phase)
        signal += np.fft.irfft(spectrum * kernel * amplitude[:, None], total, axis=1)

    # Rolling noise excites the same modes in every bearing, healthy or not.
    rough = np.fft.rfft(rng.standard_normal((n, total)), axis=1) * modes
    rough = np.fft.irfft(rough, total, axis=1)
    background = _per_window(conds, which, "background")
    rough *= (rng.uniform(0.02, 0.05, n) * background / rough.std(axis=1))[:, None]
    signal += rough
    signal = signal[:, pad:]

    # Shaft harmonics from unbalance and misalignment, present in every class.
    t = np.arange(window) / fs
    for order, (lo, hi) in ((1, (0.03, 0.09)), (2, (0.01, 0.05)), (3, (0.005, 0.025))):
        a = rng.uniform(lo, hi, n) * background
        ph = rng.uniform(0.0, 2 * np.pi, n)
        angle = 2 * np.pi * order * shaft_hz[:, None] * t[None, :] + ph[:, None]
        signal += a[:, None] * np.sin(angle)

    signal += rng.uniform(0.01, 0.03, n)[:, None] * rng.standard_normal((n, window))
    signal = _sensor(signal, fs, _per_window(conds, which, "tilt_db_per_octave"))
    signal *= np.exp(rng.normal(0.0, 0.1, n))[:, None]  # sensor mounting / sensitivity

    meta = {
        "shaft_hz": shaft_hz,
        "rpm": rpm,
        "load_hp": load,
        "fault_hz": fault_hz,
        "severity_mils": np.full(n, mils, dtype=np.int64),
        "resonance_hz": f1,
        "impact_amplitude": amplitude,
        "condition": which,
    }
    return signal.astype(np.float32), meta


def _sensor(x: np.ndarray, fs: float, tilt_db_per_octave: np.ndarray) -> np.ndarray:
    """The sensor's response: a gentle slope of the given dB/octave around 3 kHz."""
    freqs = np.fft.rfftfreq(x.shape[1], 1.0 / fs)
    octaves = np.log2(np.maximum(freqs, 50.0) / 3000.0)
    gain = 10.0 ** (tilt_db_per_octave[:, None] * octaves[None, :] / 20.0)
    return np.fft.irfft(np.fft.rfft(x, axis=1) * gain, x.shape[1], axis=1)


def generate(n_per_class: int, window: int, fs: float, seed: int, loads=LOADS,
             rig_seed: int = 0):
    """Clean windows [N, window] float32, labels [N] int64 and per-window metadata.

    Class-major order (all of class 0, then class 1, ...). Each class has its own random
    stream spawned from `seed`, so the output depends only on the arguments. Windows are
    spread evenly over the operating conditions `loads` (HP) of the rig `rig_seed`; give the
    same rig to every split so that a load means the same machine in training and test.
    """
    loads = [float(v) for v in loads]
    if not loads or any(not 0.0 <= v <= 3.0 for v in loads):
        raise UserError(f"synthetic data: loads {loads} must be a non-empty list of motor "
                        f"loads between 0 and 3 HP")
    conds = [condition(v, rig_seed) for v in loads]
    if n_per_class < 1:
        raise UserError(f"synthetic data: {n_per_class} windows per class requested; the "
                        f"per-class counts in [data] and [eval] must be at least 1")
    if window < 64:
        raise UserError(f"synthetic data: data.window = {window} samples is too short to hold "
                        f"a fault impact (use >= 64, e.g. 1024)")
    streams = np.random.SeedSequence(seed).spawn(len(CLASSES))
    xs, metas = [], []
    for label, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        x, meta = _class_windows(label, n_per_class, window, float(fs), rng, conds)
        xs.append(x)
        metas.append(meta)
    x = np.concatenate(xs)
    y = np.repeat(np.arange(len(CLASSES), dtype=np.int64), n_per_class)
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    return x, y, meta


def log_spectrum(x: np.ndarray) -> np.ndarray:
    return np.log(np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64), axis=1)) + 1e-6)


def spectral_baseline(x_train, y_train, x_test, y_test, ridge: float = 1.0) -> float:
    """Test accuracy of a one-vs-all ridge classifier on standardised log magnitude spectra.

    A yardstick for how much of the task a linear model on the spectrum already solves.
    """
    f_train, f_test = log_spectrum(x_train), log_spectrum(x_test)
    mean, std = f_train.mean(axis=0), f_train.std(axis=0) + 1e-8
    a = np.hstack([(f_train - mean) / std, np.ones((len(f_train), 1))])
    b = np.hstack([(f_test - mean) / std, np.ones((len(f_test), 1))])
    y_train = np.asarray(y_train, dtype=np.int64)
    classes = np.unique(y_train)
    targets = np.where(y_train[:, None] == classes[None, :], 1.0, -1.0)
    reg = ridge * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    w = np.linalg.solve(a.T @ a + reg, a.T @ targets)
    pred = classes[np.argmax(b @ w, axis=1)]
    return float(np.mean(pred == np.asarray(y_test)))
