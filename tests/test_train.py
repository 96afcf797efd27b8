"""A smoke training run end to end: artifacts, report contents, reproducibility."""

import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.cli import main
from tests.conftest import ROOT

SMOKE = str(ROOT / "configs" / "smoke.toml")


@pytest.fixture(scope="module")
def smoke_run(smoke_build):
    return smoke_build


def test_train_writes_model_report_and_plots(smoke_run):
    for rel in ["model/model.keras", "model/baseline.keras", "reports/train.json", "reports/train.md",
                "data/train.npz", "data/val.npz", "data/test.npz", "data/calib.npz",
                "reports/plots/train_curves.png", "reports/plots/train_accuracy_vs_snr.png",
                "reports/plots/train_confusion.png"]:
        path = smoke_run / rel
        assert path.is_file() and path.stat().st_size > 0, rel
    assert (smoke_run / "reports/plots/train_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing half-written is left behind
    assert not list(smoke_run.rglob(".*.tmp")) and not list(smoke_run.rglob(".train.*"))


def test_train_report_has_accuracy_per_noise_and_snr(smoke_run):
    report = json.loads((smoke_run / "reports/train.json").read_text())
    assert report["model"]["arch"] == "drsn_cw" and report["baseline"]["arch"] == "resnet"
    assert report["params"] == report["model"]["params"] > 0
    assert report["macs"] == report["model"]["macs"]["total"] > 0
    for part in (report["accuracy"], report["baseline"]["accuracy"]):
        assert set(part) == {"clean", "gaussian", "pink", "laplacian"}
        for kind in ("gaussian", "pink", "laplacian"):
            assert set(part[kind]) == {"-5", "10"}
            assert all(0.0 <= v <= 1.0 for v in part[kind].values())
    lin = report["data"]["linear_spectral_baseline"]
    assert 0.0 <= lin["clean"] <= 1.0 and set(lin["pink"]) == {"-5", "10"}
    assert "## Accuracy (%) by noise type and SNR" in (smoke_run / "reports/train.md").read_text()


def test_report_splits_seen_and_unseen_conditions_over_seeds(smoke_run):
    """by_condition holds per-seed accuracy on the held-out load; the deployed seed's numbers
    are the saved model's, recomputed here from the model file and the test sweep."""
    import keras
    import training.models  # noqa: F401  (registers the custom layers)
    report = json.loads((smoke_run / "reports/train.json").read_text())
    assert report["seeds"] == [7, 8]  # smoke.toml: seed 7, train.seeds = 2
    bc = report["by_condition"]
    assert bc["unseen_groups"] == ["load=3"]
    assert bc["seen_groups"] == ["load=0", "load=1", "load=2"]
    with np.load(smoke_run / "data/test.npz") as z:
        unseen, y, group = z["unseen"], z["y"], z["group"]
        x = z["x_gaussian_-5"]
    assert unseen.sum() == 60 and (~unseen).sum() == 60  # eval.per_class 6 x 10 classes each
    assert set(group[unseen]) == {"load=3"} and "load=3" not in set(group[~unseen])
    model = keras.saving.load_model(smoke_run / "model/model.keras")
    pred = np.argmax(model.predict(x, verbose=0), axis=1)
    for part, mask in (("seen", ~unseen), ("unseen", unseen)):
        first = bc[part]["drsn_cw"]["seeds"][report["model"]["seed_index"] - 1]
        assert first["gaussian"]["-5"] == pytest.approx(float(np.mean(pred[mask] == y[mask])), abs=1e-4)
        values = [run["gaussian"]["-5"] for run in bc[part]["drsn_cw"]["seeds"]]
        assert bc[part]["drsn_cw"]["mean"]["gaussian"]["-5"] == pytest.approx(np.mean(values), abs=1e-4)
        assert bc[part]["drsn_cw"]["sd"]["gaussian"]["-5"] == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    assert set(bc["unseen"]) == {"drsn_cw", "resnet"}
    assert report["comparison"]["on"] == "unseen"
    assert (smoke_run / "reports/plots/train_conditions.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Seen vs unseen operating conditions" in (smoke_run / "reports/train.md").read_text()


def test_report_says_where_the_training_time_went(smoke_run):
    """train.json timing: one entry per (arch, seed) job, inside the jobs' span, on the
    workers that ran them; the busy share is the jobs' time over the workers' time."""
    report = json.loads((smoke_run / "reports/train.json").read_text())
    t = report["timing"]
    assert sorted((j["arch"], j["seed"]) for j in t["jobs"]) == sorted(
        (a, s) for a in ("drsn_cw", "resnet") for s in report["seeds"])
    assert t["workers"] == len({j["worker"] for j in t["jobs"]}) >= 1
    assert all(0 <= j["start_s"] and j["start_s"] + j["seconds"] <= t["jobs_seconds"] + 0.2
               for j in t["jobs"])
    busy = sum(j["seconds"] for j in t["jobs"]) / (t["workers"] * t["jobs_seconds"])
    assert t["worker_busy_share"] == pytest.approx(busy, abs=0.01) and 0 < busy <= 1.01
    assert 0 < t["before_jobs_seconds"] and t["before_jobs_seconds"] + t["jobs_seconds"] <= report["seconds"] + 0.2
    assert f"training jobs in {t['jobs_seconds']:.0f} s" in (smoke_run / "reports/train.md").read_text()


def test_every_model_input_is_the_integer_preprocessing_output(smoke_run):
    """Training batches, validation, calibration and the test sweep are what the board
    computes: model_input = dequantize(preprocess(to_int16(x))), on the contract's grid
    (multiples of 1/16 in [-8, 127/16]); train.json states the contract."""
    from drsn_edge import config, preprocess
    from training import dataset
    cfg = config.load(SMOKE)
    c = preprocess.input_contract(cfg)
    report = json.loads((smoke_run / "reports/train.json").read_text())
    assert report["data"]["input_contract"] == {
        "scale": 0.0625, "zero_point": 0, "clip_rms": 8.0, "sensor_full_scale": 8.0,
        "model_trained_on_integer_preprocessing": True,
        "definition": report["data"]["input_contract"]["definition"]}

    def on_grid(x):
        q = x * 16
        return bool(np.all(q == np.round(q)) and q.min() >= -128 and q.max() <= 127)
    data = dataset.load_prepared(cfg)
    x, y = dataset.training_feed(data, cfg, 3).epoch(0)
    assert x.dtype == np.float32 and x.shape == (len(y), 512, 1) and on_grid(x)
    for name in ("val", "calib"):
        with np.load(smoke_run / f"data/{name}.npz") as z:
            assert on_grid(z["x"]), name
    with np.load(smoke_run / "data/test.npz") as z:
        for k in (k for k in z.files if k.startswith("x_")):
            q = preprocess.preprocess(z["s16" + k[1:]], c["scale"], c["zero_point"])
            np.testing.assert_array_equal(z[k][..., 0], preprocess.dequantize(q, c))
    # The feed is the pipeline on the noisy windows it draws: recompute one epoch by hand.
    feed = dataset.training_feed(data, cfg, 3)
    rng = np.random.default_rng([3, 10, 0])
    order = rng.permutation(len(feed.x))
    clean = feed.augment.apply(feed.x[order], feed.window, np.random.default_rng([3, 11, 0]))
    raw = dataset.noisy(clean, rng, feed.kinds, feed.snr_range)
    q = preprocess.preprocess(preprocess.to_int16(raw, 8.0), 0.0625, 0)
    np.testing.assert_array_equal(x[..., 0], q.astype(np.float32) / 16)


def test_the_deployed_seed_is_the_best_on_validation(smoke_run):
    report = json.loads((smoke_run / "reports/train.json").read_text())
    for role in ("model", "baseline"):
        part = report[role]
        vals = part["val_accuracy_by_seed"]
        assert len(vals) == 2 and part["seed_index"] == 1 + int(np.argmax(vals))
        assert part["seed"] == report["seeds"][part["seed_index"] - 1]
        assert part["best_val_accuracy"] == max(vals)
    assert not (smoke_run / "model/seeds").exists()  # the other seeds' files are gone
    assert "best validation accuracy of the seeds" in (smoke_run / "reports/train.md").read_text()


def test_seed_choice_rule():
    from training.train import pick_seed
    assert pick_seed([0.80, 0.91, 0.85], True) == 1
    assert pick_seed([0.90, 0.90, 0.85], True) == 0           # a tie goes to the first seed
    assert pick_seed([0.80, 0.91, 0.85], False) == 0          # validation from training recordings


def test_comparison_claims_a_gap_only_beyond_the_seed_spread():
    from training.train import compare
    kinds = ["gaussian"]

    def run(acc):
        return {"clean": acc, "gaussian": {"-5": acc}}
    # Gaps of +4, +6, +5 pp over three seeds: mean +5, sd 1 -> claimed.
    steady = {"unseen": {"drsn_cw": {"seeds": [run(0.74), run(0.76), run(0.75)]},
                         "resnet": {"seeds": [run(0.70), run(0.70), run(0.70)]}}}
    out = compare(steady, "drsn_cw", "resnet", kinds, [-5])
    assert out["per_snr_pp"]["-5"] == pytest.approx(5.0) and out["sd_pp"]["-5"] == pytest.approx(1.0)
    assert out["claimed"]["-5"] is True and out["on"] == "unseen"
    # Gaps of +12, -8, +2 pp: mean +2, sd 10 -> no claim.
    noisy = {"unseen": {"drsn_cw": {"seeds": [run(0.82), run(0.62), run(0.72)]},
                        "resnet": {"seeds": [run(0.70), run(0.70), run(0.70)]}}}
    out = compare(noisy, "drsn_cw", "resnet", kinds, [-5])
    assert out["per_snr_pp"]["-5"] == pytest.approx(2.0) and out["claimed"]["-5"] is False


def test_worker_plan_keeps_a_seed_on_one_worker_and_the_cpus_busy_to_the_end():
    from training.train import worker_plan
    archs = [("model", "drsn_cw"), ("baseline", "resnet"), ("compare", "drsn_cs")]

    def jobs(arch_roles, seeds):
        return [(r, a, i, s) for i, s in enumerate(seeds) for r, a in arch_roles]

    default = jobs(archs, [1, 2, 3])
    # 3 seeds on 2 CPUs: a worker per seed, each training the seed's 3 archs
    assert worker_plan(default, cpus=2) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    # seeds that share out evenly: one worker per CPU
    assert worker_plan(jobs(archs[:2], [7, 8]), cpus=2) == [[0, 1], [2, 3]]
    assert worker_plan(jobs(archs, [1, 2, 3, 4]), cpus=2) == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]]
    # one seed: its jobs are shared out instead, shrinkage models first
    assert worker_plan(jobs(archs, [1]), cpus=2) == [[0, 1], [2]]
    # train.workers given: that many
    assert worker_plan(default, cpus=2, workers=1) == [list(range(9))]
    assert sorted(k for w in worker_plan(default, cpus=4) for k in w) == list(range(9))


def test_saved_model_reproduces_the_reported_accuracy(smoke_run):
    import keras
    import training.models  # noqa: F401  (registers the custom layers)
    report = json.loads((smoke_run / "reports/train.json").read_text())
    model = keras.saving.load_model(smoke_run / "model/model.keras")
    with np.load(smoke_run / "data/test.npz") as z:
        pred = np.argmax(model.predict(z["x_pink_-5"], verbose=0), axis=1)
        acc = float(np.mean(pred == z["y"]))
    assert acc == pytest.approx(report["accuracy"]["pink"]["-5"], abs=1e-4)


def test_same_config_and_seed_give_bit_identical_model_whatever_the_workers(smoke_run, tmp_path):
    # smoke_run trained with one worker process per CPU; this rerun uses one process.
    assert main(["train", "--config", SMOKE, "--build-dir", str(tmp_path), "--set", "train.workers=1"]) == 0
    for rel in ["model/model.keras", "model/baseline.keras", "data/test.npz", "data/calib.npz"]:
        assert (tmp_path / rel).read_bytes() == (smoke_run / rel).read_bytes(), rel


def test_a_different_seed_gives_a_different_model(smoke_run, tmp_path):
    assert main(["train", "--config", SMOKE, "--set", "seed=8", "--set", "model.baseline=''",
                 "--build-dir", str(tmp_path)]) == 0
    assert (tmp_path / "model/model.keras").read_bytes() != (smoke_run / "model/model.keras").read_bytes()
    assert not (tmp_path / "model/baseline.keras").exists()


def test_training_on_recording_files_splits_by_recording(tmp_path):
    """The `files` source end to end: .mat recordings labelled by file name, through training."""
    import scipy.io
    from training import signals

    rec_dir = tmp_path / "recordings"
    rec_dir.mkdir()
    for r in range(3):
        x, y, _ = signals.generate(1, 4096, 12000, seed=100 + r)
        for label, cls in enumerate(signals.CLASSES):
            scipy.io.savemat(rec_dir / f"{cls}_run{r}.mat", {"X097_DE_time": x[label].astype(np.float64)[:, None]})
    build = tmp_path / "build"
    code = main(["train", "--config", SMOKE, "--build-dir", str(build), "--set", "data.source='files'",
                 "--set", f"data.files.paths=['{rec_dir}']", "--set", "model.baseline=''",
                 "--set", "train.epochs=1"])
    assert code == 0
    report = json.loads((build / "reports/train.json").read_text())
    assert report["data"]["source"] == "files"
    assert report["classes"] == list(signals.CLASSES)
    with np.load(build / "data/test.npz") as z:
        # one recording per class in test: 4096 samples, window 512, overlap 0.5 -> 15 windows each
        assert z["x_clean"].shape == (10 * 15, 512, 1)
        assert np.bincount(z["y"]).tolist() == [15] * 10


def test_training_on_text_files_in_the_seu_gearbox_layout(tmp_path):
    """End to end on files laid out like Southeast University's gearbox set: lines of text,
    then 8 comma-separated channels (a comma closing each line); the signal in channel 2
    (data.files.key = "2"), the rate (24 kHz, resampled to 12 kHz) from the manifest."""
    from training import signals

    rig = tmp_path / "seu"
    rig.mkdir()
    rows = ["path,label,load,fs_hz"]
    preamble = "".join(f"Information {i}: drivetrain dynamics simulator, channel setup\n" for i in range(15))
    for load in (0, 1):
        x, _, _ = signals.generate(1, 12000, 12000, seed=300 + load, loads=[load], rig_seed=5)
        for label, cls in enumerate(signals.CLASSES):
            motor = np.sin(np.arange(12000) * 0.05)
            block = np.stack([motor, x[label], -x[label], motor, motor, motor, motor, motor], 1)
            name = f"{label:02d}_20_{load}.csv"
            (rig / name).write_text(preamble + "Data\n"
                                    + "".join(",".join(f"{v:.5f}" for v in r) + ",\n" for r in block.tolist()))
            rows.append(f"{name},{cls},{load},24000")
    (rig / "manifest.csv").write_text("\n".join(rows) + "\n")
    build = tmp_path / "build"
    assert main(["train", "--config", SMOKE, "--build-dir", str(build), "--set", "data.source='files'",
                 "--set", f"data.files.paths=['{rig}']", "--set", f"data.files.manifest='{rig / 'manifest.csv'}'",
                 "--set", "data.files.key='2'", "--set", "data.files.split=[1, 0, 0]",
                 "--set", "data.files.test={load = [1]}", "--set", "model.baseline=''",
                 "--set", "train.seeds=1", "--set", "train.epochs=1"]) == 0
    report = json.loads((build / "reports/train.json").read_text())
    assert report["data"]["source"] == "files" and report["classes"] == list(signals.CLASSES)
    assert report["by_condition"]["unseen_groups"] == ["load=1"]
    with np.load(build / "data/test.npz") as z:
        # 12000 samples at 24 kHz -> 6000 at 12 kHz; window 512, hop 256 -> 22 windows each
        assert z["x_clean"].shape == (10 * 22, 512, 1)
        assert np.bincount(z["y"]).tolist() == [22] * 10
        first = z["s16_clean"][0].astype(np.float64).ravel()   # 00_20_1.csv, its first window
    from scipy.signal import resample_poly
    x, _, _ = signals.generate(1, 12000, 12000, seed=301, loads=[1], rig_seed=5)
    expected = resample_poly(np.round(x[0], 5), 1, 2)[:512]   # channel 2, not the motor's sine
    assert np.corrcoef(first, expected)[0, 1] > 0.99


def _rig_config(tmp_path, loads=range(4), **replace) -> Path:
    """One recording per class per motor load, a manifest with a load column (file names
    that tell nothing), and the smoke config pointed at them."""
    import scipy.io
    from training import signals

    rig = tmp_path / "rig"
    rig.mkdir()
    rows = ["path,label,load"]
    for load in loads:
        x, y, _ = signals.generate(1, 6000, 12000, seed=200 + load, loads=[load], rig_seed=5)
        for label, cls in enumerate(signals.CLASSES):
            name = f"{label:02d}_{load}.mat"
            scipy.io.savemat(rig / name, {"X001_DE_time": x[label].astype(np.float64)[:, None]})
            rows.append(f"{name},{cls},{load}")
    (rig / "manifest.csv").write_text("\n".join(rows) + "\n")
    text = ((ROOT / "configs" / "smoke.toml").read_text()
            .replace('source = "synthetic"', 'source = "files"')
            .replace('paths = []', f'paths = ["{rig}"]')
            .replace('manifest = ""', f'manifest = "{rig / "manifest.csv"}"')
            .replace('split = [0.7, 0.15, 0.15]', 'split = [1, 0, 0]'))
    for old, new in replace.items():
        text = text.replace(old, new)
    config = tmp_path / "rig.toml"
    config.write_text(text)
    return config


def test_one_recording_per_class_and_load_trains_on_three_loads_tests_on_the_fourth(tmp_path):
    """What a user of a real rig does: one config that holds out load 3."""
    config = _rig_config(tmp_path, **{"test = {}": "test = {load = [3]}"})
    build = tmp_path / "build"
    assert main(["train", "--config", str(config), "--build-dir", str(build),
                 "--set", "train.seeds=1", "--set", "train.epochs=1"]) == 0
    report = json.loads((build / "reports/train.json").read_text())
    assert report["by_condition"]["unseen_groups"] == ["load=3"]
    assert "seen" not in report["by_condition"]  # no seen-condition recordings were held out
    assert report["data"]["split"]["test_by"] == {"load": ["3"]}
    assert report["data"]["validation_selects"] is False
    with np.load(build / "data/test.npz") as z:
        assert set(z["group"]) == {"load=3"} and z["unseen"].all()
        # 6000 samples, window 512, hop 256 -> 22 windows per recording, one recording per class
        assert np.bincount(z["y"]).tolist() == [22] * 10
    with np.load(build / "data/val.npz") as z:
        assert not bool(z["selects"])


def test_leave_one_load_out_trains_a_fold_per_load_and_summarises(tmp_path):
    config = _rig_config(tmp_path, loads=(0, 1), **{'leave_one_out = ""': 'leave_one_out = "load"'})
    build = tmp_path / "build"
    assert main(["train", "--config", str(config), "--build-dir", str(build), "--set", "train.seeds=1",
                 "--set", "train.epochs=1", "--set", "model.baseline=''"]) == 0
    summary = json.loads((build / "reports/train_loo.json").read_text())
    assert list(summary["folds"]) == ["load=0", "load=1"]
    for group in ("load=0", "load=1"):
        fold = json.loads((build / "loo" / group / "reports/train.json").read_text())
        assert fold["by_condition"]["unseen_groups"] == [group]
        assert summary["folds"][group]["unseen"]["drsn_cw"]["mean"] == fold["by_condition"]["unseen"]["drsn_cw"]["mean"]
        with np.load(build / "loo" / group / "data/test.npz") as z:
            assert set(z["group"]) == {group}
    assert "## held out: load=1" in (build / "reports/train_loo.md").read_text()
    assert not (build / "model").exists()  # folds evaluate; a plain run deploys


def test_synthetic_validation_can_hold_out_its_own_load():
    """val_loads take a load away from training and test: the model is then selected on a
    condition it never trained on."""
    from drsn_edge import config
    from training import dataset, signals
    cfg = config.load(SMOKE, ["data.synthetic.val_loads=[2]"])
    src = dataset.sources(cfg)
    assert src["split"]["train_loads"] == [0.0, 1.0] and src["split"]["val_loads"] == [2.0]
    assert src["split"]["val"] == "held-out loads"
    # The validation windows are the rig at load 2: the same windows generate() gives there.
    x, y, _ = signals.generate(cfg["data"]["val_per_class"], cfg["data"]["window"], cfg["data"]["fs_hz"],
                               cfg["seed"] + 1, [2.0], rig_seed=cfg["seed"])
    assert np.array_equal(src["val"][0], x)
    assert set(src["test_group"]) == {"load=0", "load=1", "load=3"}
