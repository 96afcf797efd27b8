"""The datasets every stage uses, built from the config and written under build/data/.

- train.npz  clean training windows and labels (noise is drawn afresh each epoch); with
             train.augment on, each is longer than data.window by Augment.margin so that
             speed changes and crops can be drawn from it
- val.npz    validation windows with noise at an SNR drawn from data.snr_db_range
- test.npz   the evaluation sweep: `y`, `x_clean`, and `x_<noise>_<snr>` for every noise type
             and SNR of eval.snr_db (e.g. `x_pink_-5`), the same windows under each condition;
             `s16_clean` / `s16_<noise>_<snr>`: the int16 sensor samples each of those model
             inputs was preprocessed from (what `hil --input raw` sends); `group` (the
             operating condition each window comes from, e.g. "load=3") and `unseen` (True
             where training and validation never saw that condition)
- calib.npz  a fixed set of noisy training windows for quantization calibration

train.npz holds clean windows in physical units. Every other window, and every training
batch, is a model input already: the output of the integer preprocessing the board runs
(drsn_edge.preprocess.model_input: int16 at data.sensor_full_scale, then preprocess with the
input contract, dequantized), shape [n, window, 1], float32, so the model is trained and
evaluated on exactly the int8 values the device computes.
"""

from __future__ import annotations

import time

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError
from drsn_edge.preprocess import dequantize, host_pipeline, input_contract, model_input
from training import noise, signals
from training.augment import Augment, centre


def normalize(x: np.ndarray) -> np.ndarray:
    """Per-window zero mean and unit RMS in float: what the integer preprocessing
    (drsn_edge.preprocess) approximates. Not used for model inputs any more (those are
    `model_input`); kept as the float reference the tests compare the integer pipeline with."""
    x = x - x.mean(axis=-1, keepdims=True)
    rms = np.sqrt(np.mean(x * x, axis=-1, keepdims=True))
    return (x / np.maximum(rms, 1e-12)).astype(np.float32)


def noisy(clean: np.ndarray, rng: np.random.Generator, kinds, snr_range) -> np.ndarray:
    """Each window gets one of `kinds` at an SNR uniform in `snr_range`."""
    n = len(clean)
    kind = rng.choice(np.asarray(kinds), size=n)
    snr = rng.uniform(snr_range[0], snr_range[1], size=n)
    return noise.add(clean, snr, kind, rng)


def condition_key(kind: str, snr_db) -> str:
    return f"x_{kind}_{format_snr(snr_db)}"


def format_snr(snr_db) -> str:
    return f"{float(snr_db):g}"


def load_group(load: float) -> str:
    return f"load={float(load):g}"


def synthetic_loads(d: dict) -> tuple[list[float], list[float], list[float]]:
    """(train, validation, unseen) motor loads of the generated rig, from [data.synthetic]:
    test_loads are held out for the test; val_loads, when given, are held out for selecting
    the model (else validation draws fresh windows of the training loads)."""
    syn = d.get("synthetic", {})
    loads = [float(v) for v in syn.get("loads", signals.LOADS)]
    unseen = [float(v) for v in syn.get("test_loads", [])]
    held_val = [float(v) for v in syn.get("val_loads", [])]
    seen = [v for v in loads if v not in unseen and v not in held_val]
    if not seen:
        raise UserError(f"data.synthetic: test_loads {syn.get('test_loads')} and val_loads "
                        f"{syn.get('val_loads', [])} hold out every load of {syn.get('loads')}; "
                        f"leave at least one load to train on")
    return seen, held_val or seen, unseen


def sources(cfg: dict) -> dict:
    """Clean windows per split: {'classes', 'train', 'val', 'test'} with (x, y) each, and
    'test_group' / 'test_unseen': each test window's condition and whether training saw it."""
    d = cfg["data"]
    seed = int(cfg["seed"])
    if d["source"] == "synthetic":
        fs, window = d["fs_hz"], d["window"]
        seen, val_loads, unseen = synthetic_loads(d)
        per_class = cfg["eval"]["per_class"]
        # Different seeds per split: no window, speed draw or noise draw is shared; one rig
        # (the config's seed), so a load is the same machine in every split.
        stored = window + Augment.from_config(cfg["train"]).margin(window)
        xtr, ytr, _ = signals.generate(d["train_per_class"], stored, fs, seed, seen, rig_seed=seed)
        xva, yva, _ = signals.generate(d["val_per_class"], window, fs, seed + 1, val_loads, rig_seed=seed)
        xs, ys, groups, flags = [], [], [], []
        for loads, held_out, offset in ((seen, False, 2), (unseen, True, 3)):
            if not loads:
                continue
            x, y, meta = signals.generate(per_class, window, fs, seed + offset, loads, rig_seed=seed)
            xs.append(x)
            ys.append(y)
            groups += [load_group(loads[i]) for i in meta["condition"]]
            flags.append(np.full(len(y), held_out))
        return {"classes": list(signals.CLASSES), "train": (xtr, ytr), "val": (xva, yva),
                "test": (np.concatenate(xs), np.concatenate(ys)),
                "test_group": np.asarray(groups), "test_unseen": np.concatenate(flags),
                "val_selects": True,
                "split": {"train_loads": seen, "test_loads": unseen, "val_loads": val_loads,
                          "val": "held-out loads" if val_loads != seen else "fresh windows of the "
                          "training loads (independent draws, not cut from training windows)"}}
    if d["source"] == "files":
        from training import recordings
        window = d["window"]
        stored = window + Augment.from_config(cfg["train"]).margin(window)
        loaded = recordings.load_dataset(d["files"], window, seed, fs_hz=float(d["fs_hz"]),
                                         train_window=stored)
        return {"classes": loaded["classes"],
                **{k: loaded[k][:2] for k in ("train", "val", "test")},
                "test_group": loaded["test_group"], "test_unseen": loaded["test_unseen"],
                "val_selects": loaded["selects"], "split": loaded["split"]}
    raise UserError(f"data.source = {d['source']!r}: use 'synthetic' or 'files'")


def prepare(cfg: dict, write: bool = True) -> dict:
    """Build every split (and the test sweep) from the config; write them under build/data/."""
    d = cfg["data"]
    seed = int(cfg["seed"])
    t0 = time.perf_counter()
    src = sources(cfg)
    xtr, ytr = src["train"]
    xva, yva = src["val"]
    xte, yte = src["test"]

    contract = input_contract(cfg)
    rng = np.random.default_rng([seed, 1])
    val_x = model_input(noisy(xva, rng, d["noise_types"], d["snr_db_range"]), contract)
    calib_idx = np.random.default_rng([seed, 2]).permutation(len(xtr))[:min(len(xtr), 512)]
    calib_x = model_input(noisy(centre(xtr[calib_idx], d["window"]), np.random.default_rng([seed, 3]),
                                d["noise_types"], d["snr_db_range"]), contract)
    test = {"y": yte.astype(np.int64), "group": np.asarray(src["test_group"]).astype(str),
            "unseen": np.asarray(src["test_unseen"], dtype=bool)}
    _sweep_condition(test, "x_clean", xte, contract)
    for k, kind in enumerate(d["noise_types"]):
        for s, snr in enumerate(cfg["eval"]["snr_db"]):
            # One generator per condition: adding a noise type or SNR keeps the others' bits.
            g = np.random.default_rng([seed, 100 + noise.KINDS.index(kind), 1000 + int(round(snr * 10))])
            _sweep_condition(test, condition_key(kind, snr), noise.add(xte, float(snr), kind, g), contract)

    data = {
        "classes": src["classes"],
        "val_selects": bool(src["val_selects"]),
        "split": src["split"],
        "train": (xtr.astype(np.float32), ytr.astype(np.int64)),
        "val": (val_x[..., None], yva.astype(np.int64)),
        "test": test,
        "calib": calib_x[..., None],
        "seconds": time.perf_counter() - t0,
    }
    if write:
        save(data)
    return data


def _sweep_condition(test: dict, key: str, windows: np.ndarray, contract: dict) -> None:
    """test[key]: the model inputs of one condition; test["s16" + key[1:]]: the int16
    samples they were preprocessed from."""
    samples, q = host_pipeline(windows, contract)
    test["s16" + key[1:]] = samples
    test[key] = dequantize(q, contract)[..., None]


def save(data: dict) -> None:
    out = artifacts.paths()["data"]
    classes = np.asarray(data["classes"])
    _savez(out / "train.npz", x=data["train"][0], y=data["train"][1], classes=classes)
    _savez(out / "val.npz", x=data["val"][0], y=data["val"][1], classes=classes,
           selects=np.asarray(data["val_selects"]))
    _savez(out / "test.npz", classes=classes, **data["test"])
    _savez(out / "calib.npz", x=data["calib"])


def _savez(path, **arrays) -> None:
    with artifacts.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_prepared(cfg: dict) -> dict:
    """What prepare() returned, read back from build/data/ (for training worker processes)."""
    out = artifacts.paths()["data"]
    with np.load(out / "train.npz") as z:
        train = (z["x"], z["y"])
        classes = [str(c) for c in z["classes"]]
    with np.load(out / "val.npz") as z:
        val = (z["x"], z["y"])
        selects = bool(z["selects"])
    return {"classes": classes, "train": train, "val": val, "val_selects": selects,
            "test": _test_arrays(out / "test.npz")}


def _test_arrays(path) -> dict:
    """test.npz as prepare() holds it: {"y", "group", "unseen", "x_clean", "x_<kind>_<snr>"}."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "classes"}


def load_test(path=None) -> dict:
    """The evaluation sweep written by prepare(): {'classes', 'y', 'clean', (kind, snr): x,
    'group', 'unseen', 's16': {'clean' or (kind, snr): int16 sensor samples}}."""
    path = path or artifacts.paths()["data"] / "test.npz"
    if not path.is_file():
        raise UserError(f"{path} not found; run `make train` (or `drsn-edge train`) first")
    with np.load(path) as z:
        out = {"classes": [str(c) for c in z["classes"]], "y": z["y"], "clean": z["x_clean"]}
        if "unseen" not in z.files:
            raise UserError(f"{path} was written by an older drsn-edge (no operating conditions); "
                            f"run `make train` again")
        out["group"], out["unseen"] = z["group"].astype(str), z["unseen"].astype(bool)
        # The int16 sensor samples of each condition (absent in files of older versions).
        out["s16"] = {"clean": z["s16_clean"]} if "s16_clean" in z.files else {}
        for key in z.files:
            if key.startswith("x_") and key != "x_clean":
                kind, snr = key[2:].rsplit("_", 1)
                out[(kind, float(snr))] = z[key]
                if "s16" + key[1:] in z.files:
                    out["s16"][(kind, float(snr))] = z["s16" + key[1:]]
    return out


class NoisyEpochs:
    """Training batches with fresh noise every epoch (a different noise draw per epoch is a
    cheap, effective regulariser against memorising one realisation) and, when configured,
    fresh augmentation (training/augment.py), seeded per epoch so that a rerun sees exactly
    the same batches. Stored windows may be longer than `window`: augmentation crops them.
    Batches are model inputs: the integer preprocessing's output (`model_input`)."""

    def __init__(self, x_clean, y, kinds, snr_range, seed, contract: dict, window=None, augment=None):
        self.x, self.y = x_clean, y
        self.contract = contract
        self.kinds, self.snr_range, self.seed = kinds, snr_range, seed
        self.window = int(window or x_clean.shape[1])
        self.augment = augment or Augment()

    def epoch(self, e: int):
        rng = np.random.default_rng([self.seed, 10, e])
        order = rng.permutation(len(self.x))
        clean = self.augment.apply(self.x[order], self.window, np.random.default_rng([self.seed, 11, e]))
        x = model_input(noisy(clean, rng, self.kinds, self.snr_range), self.contract)[..., None]
        return x, self.y[order]


def training_feed(data: dict, cfg: dict, seed: int) -> NoisyEpochs:
    """The one way every stage draws training batches from build/data/train.npz."""
    x, y = data["train"]
    return NoisyEpochs(x, y, cfg["data"]["noise_types"], cfg["data"]["snr_db_range"], seed,
                       input_contract(cfg), window=cfg["data"]["window"],
                       augment=Augment.from_config(cfg["train"]))


def run(cfg: dict) -> dict:
    """`drsn-edge data`: write the datasets and print how hard the task is."""
    from training.train import linear_baseline
    data = prepare(cfg)
    report = linear_baseline(data, cfg)
    print(f"data: {sum(len(v[0]) for k, v in data.items() if k in ('train', 'val'))} train+val windows, "
          f"{len(data['test']['y'])} test windows per condition, written to {artifacts.paths()['data']}")
    print(f"linear spectral baseline: clean {report['clean']:.3f}")
    return report
