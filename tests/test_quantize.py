"""The quantize stage: QAT to int8, conversion, op audit, host parity, bad input."""

import json
import shutil

import numpy as np
import pytest

from drsn_edge.cli import main
from drsn_edge.errors import UserError
from quantize import audit, parity
from tests.conftest import ROOT

SMOKE = str(ROOT / "configs" / "smoke.toml")
KINDS = ("gaussian", "pink", "laplacian")


def _copy_trained(src, dst):
    """A fresh build dir holding only what `train` wrote (so quantize runs never interfere)."""
    for part in ("data", "model"):
        shutil.copytree(src / part, dst / part)
    for f in (dst / "model").glob("*.tflite"):
        f.unlink()
    return dst


def _quantize(build) -> int:
    return main(["quantize", "--config", SMOKE, "--build-dir", str(build)])


@pytest.fixture(scope="module")
def quantized(smoke_quantized):
    # The session's one quantize run, which the firmware and HIL tests of the QAT model use.
    return smoke_quantized


@pytest.fixture(scope="module")
def report(quantized):
    return json.loads((quantized / "reports/quantize.json").read_text())


# --- the run ------------------------------------------------------------------------------

def test_quantize_writes_every_artifact(quantized):
    for rel in ["model/model_int8.tflite", "model/model_ptq_int8.tflite", "model/baseline_int8.tflite",
                "reports/quantize.json", "reports/quantize.md", "reports/quantize_outputs.npz",
                "reports/plots/quantize_accuracy_vs_snr.png", "reports/plots/quantize_confusion_tflm.png"]:
        path = quantized / rel
        assert path.is_file() and path.stat().st_size > 0, rel
    assert (quantized / "model/model_int8.tflite").read_bytes()[4:8] == b"TFL3"
    assert not [p for p in quantized.rglob(".*") if p.is_file()]  # no temporary files left


def test_report_schema(quantized, report):
    for key in ("ops", "all_int8", "input", "output", "sizes", "accuracy", "agreement_with_float",
                "tflite_vs_tflm_max_lsb", "metrics_vs_float", "baseline", "targets", "seconds", "audit"):
        assert key in report, key
    assert report["all_int8"] is True
    for side in ("input", "output"):
        assert report[side]["dtype"] == "int8"
        assert set(report[side]) >= {"scale", "zero_point", "shape"}
    assert report["input"]["shape"] == [1, 512, 1] and report["output"]["shape"] == [1, 10]
    # Softmax output: TFLite's fixed int8 probability grid.
    assert report["output"]["scale"] == pytest.approx(1 / 256) and report["output"]["zero_point"] == -128
    for run in ("float", "qat", "ptq", "tflite", "tflm"):
        acc = report["accuracy"][run]
        assert set(acc) == {"clean", *KINDS}
        for kind in KINDS:
            assert set(acc[kind]) == {"-5", "10"} and all(0 <= v <= 1 for v in acc[kind].values())
    for run in ("qat", "ptq", "tflite", "tflm"):
        m = report["metrics_vs_float"][run]
        assert set(m) == {"rmse", "mae", "l2r", "cos"} and -1 <= m["cos"] <= 1 + 1e-9
        assert 0 <= report["agreement_with_float"][run] <= 1
    assert set(report["baseline"]["accuracy"]) == {"float", "qat", "tflite"}
    # The verdicts against the limits of configs/smoke.toml, with the worst drop taken from
    # the accuracy table (float minus TFLM, in percentage points, over every condition).
    t = report["targets"]
    assert (t["max_drop_pp"], t["min_agreement"]) == (0.5, 0.99)
    acc = report["accuracy"]
    drops = [100 * (acc["float"]["clean"] - acc["tflm"]["clean"])] + [
        100 * (acc["float"][k][s] - acc["tflm"][k][s]) for k in KINDS for s in ("-5", "10")]
    assert t["worst_drop_pp"] == pytest.approx(max(drops), abs=0.01)
    assert t["meets_accuracy"] is (max(drops) <= 0.5 + 1e-9)
    assert t["meets_agreement"] is (report["agreement_with_float"]["tflm"] >= 0.99)
    assert report["sizes"]["model_bytes"] == (quantized / "model/model_int8.tflite").stat().st_size
    assert report["seconds"]["total"] > 0
    md = (quantized / "reports/quantize.md").read_text()
    assert "## Op audit" in md and "plots/quantize_accuracy_vs_snr.png" in md


def test_deployed_model_passes_the_audit_with_only_int8_ops(quantized, report):
    r = audit.audit((quantized / "model/model_int8.tflite").read_bytes(), "model_int8.tflite")
    assert r["all_int8"] and not r["problems"]
    assert {o["op"] for o in r["ops"]} <= audit.TFLM_INT8_OPS
    assert not {o["op"] for o in r["ops"]} & (audit.BOUNDARY_OPS | audit.DYNAMIC_SHAPE_OPS)
    for o in r["ops"]:
        for t in o["outputs"] + [t for t in o["inputs"] if not t["const"]]:
            assert t["dtype"] == "int8", (o["op"], t["name"])
    # The shrinkage path is in the model, int8, and traced back to its layers.
    ops = {(o["op"], o["layer"]) for o in report["ops"]}
    assert {("ABS", "rsbu1_absmean"), ("LOGISTIC", "rsbu1_fc2"), ("MINIMUM", "rsbu1_shrink"),
            ("MUL", "rsbu1_tau"), ("SOFTMAX", "classifier")} <= ops
    assert len(report["ops"]) == len(r["ops"])


def test_tflm_accuracy_is_the_accuracy_of_its_saved_outputs(quantized, report):
    with np.load(quantized / "reports/quantize_outputs.npz") as z:
        y, conds, tflm = z["y"], list(z["conditions"]), z["tflm_int8"]
    n = len(y) // len(conds)
    for i, cond in enumerate(conds):
        acc = float(np.mean(np.argmax(tflm[i * n:(i + 1) * n], 1) == y[i * n:(i + 1) * n]))
        if cond == "x_clean":
            expected = report["accuracy"]["tflm"]["clean"]
        else:
            kind, snr = cond[2:].rsplit("_", 1)
            expected = report["accuracy"]["tflm"][kind][snr]
        assert acc == pytest.approx(expected, abs=1e-4), cond


def test_seen_and_unseen_conditions_have_their_own_accuracy_and_targets(quantized, report):
    """by_condition splits the sweep by the test windows' `unseen` flag; its numbers are the
    saved TFLM outputs' on those windows."""
    with np.load(quantized / "reports/quantize_outputs.npz") as z:
        y, conds, tflm = z["y"], list(z["conditions"]), z["tflm_int8"]
    with np.load(quantized / "data/test.npz") as z:
        unseen = z["unseen"]
    n = len(y) // len(conds)
    assert set(report["by_condition"]) == {"seen", "unseen"}
    for part, keep in (("seen", ~unseen[:n]), ("unseen", unseen[:n])):
        got = report["by_condition"][part]
        assert got["windows_per_condition"] == int(keep.sum()) == 60
        i = conds.index("x_gaussian_-5")
        block, labels = tflm[i * n:(i + 1) * n][keep], y[i * n:(i + 1) * n][keep]
        expected = float(np.mean(np.argmax(block, 1) == labels))
        assert got["accuracy"]["tflm"]["gaussian"]["-5"] == pytest.approx(expected, abs=1e-4)
        assert set(got["targets"]) >= {"worst_drop_pp", "meets_accuracy", "agreement", "meets_agreement"}


def test_saved_tflm_outputs_rerun_bit_identically(quantized, report):
    model = (quantized / "model/model_int8.tflite").read_bytes()
    with np.load(quantized / "data/test.npz") as z:
        x = z["x_pink_-5"][:8]
    with np.load(quantized / "reports/quantize_outputs.npz") as z:
        i = list(z["conditions"]).index("x_pink_-5")
        n = len(z["y"]) // len(z["conditions"])
        saved = z["tflm_int8"][i * n:i * n + 8]
    assert np.array_equal(parity.run_tflm(model, x), saved)
    # The report's TFLite-vs-TFLM figure covers these windows too.
    diff = parity.lsb_difference(parity.run_tflite(model, x), saved)
    assert diff["max_lsb"] <= report["tflite_vs_tflm_max_lsb"]


def test_ptq_and_baseline_passes_are_the_saved_optimised_tflite_outputs(quantized, report):
    """The PTQ and baseline accuracies come from TFLite's optimised builtins: the saved
    outputs are theirs (rerun bit-identically), and they stay within a few tens of LSB of
    the reference kernels' with the same top-1 on most windows."""
    assert report["method"]["tflite_kernels"] == {"qat": "reference", "ptq": "optimised builtins",
                                                  "baseline": "optimised builtins"}
    with np.load(quantized / "data/test.npz") as z:
        x = z["x_gaussian_-5"][:16]
    with np.load(quantized / "reports/quantize_outputs.npz") as z:
        i = list(z["conditions"]).index("x_gaussian_-5")
        n = len(z["y"]) // len(z["conditions"])
        saved = {k: z[f"{k}_int8"][i * n:i * n + 16] for k in ("ptq", "baseline_tflite")}
    for key, name in (("ptq", "model_ptq_int8.tflite"), ("baseline_tflite", "baseline_int8.tflite")):
        model = (quantized / "model" / name).read_bytes()
        fast, ref = parity.run_tflite_fast(model, x), parity.run_tflite(model, x)
        assert fast.dtype == np.int8 and np.array_equal(fast, saved[key]), key
        assert parity.lsb_difference(fast, ref)["max_lsb"] <= 64, key
        assert np.mean(np.argmax(fast, 1) == np.argmax(ref, 1)) >= 0.75, key


def test_same_seed_and_config_give_bit_identical_tflite(quantized, smoke_build, tmp_path):
    again = _copy_trained(smoke_build, tmp_path)
    assert _quantize(again) == 0
    for name in ("model_int8.tflite", "model_ptq_int8.tflite", "baseline_int8.tflite"):
        assert (again / "model" / name).read_bytes() == (quantized / "model" / name).read_bytes(), name


def test_converter_takes_the_shrinkage_ranges_from_fake_quant(smoke_build):
    import keras
    from quantize import convert, qat
    import training.models  # noqa: F401
    model = keras.saving.load_model(smoke_build / "model/model.keras")
    with np.load(smoke_build / "data/calib.npz") as z:
        calib = z["x"][:64]
    qmodel = qat.build_qat_model(model)
    qat.calibrate(qmodel, calib)
    ranges = qat.ranges(qmodel)
    # Every step of the threshold sub-network has its own tracked range.
    for name in ("rsbu1_absmean_abs_q", "rsbu1_absmean_q", "rsbu1_fc1_relu_q", "rsbu1_fc2_logits_q",
                 "rsbu1_tau_q", "rsbu1_shrink_pos_q", "rsbu1_shrink_sum_q", "rsbu1_shrink_q"):
        lo, hi = ranges[name]
        assert hi > lo, name
    assert ranges["rsbu1_fc2_q"] == pytest.approx((0.0, 255 / 256))
    r = audit.inspect(convert.to_int8_tflite(qmodel, calib, 16), "qat", [l.name for l in model.layers])
    out = {o["layer"]: o["outputs"][0] for o in r["ops"] if o["op"] == "ADD"}
    lo, hi = ranges["rsbu1_shrink_q"]
    assert out["rsbu1_shrink"]["scale"] == pytest.approx((hi - lo) / 255, rel=1e-5)
    tau = next(o["outputs"][0] for o in r["ops"] if o["op"] == "MUL" and o["layer"] == "rsbu1_tau")
    lo, hi = ranges["rsbu1_tau_q"]
    assert tau["scale"] == pytest.approx((hi - lo) / 255, rel=1e-5)


def test_error_budget_switches_each_int8_source_and_restores_the_model(smoke_build):
    import keras
    from quantize import qat
    import training.models  # noqa: F401
    model = keras.saving.load_model(smoke_build / "model/model.keras")
    with np.load(smoke_build / "data/calib.npz") as z:
        calib = z["x"][:64]
    with np.load(smoke_build / "data/test.npz") as z:
        x = np.concatenate([z["x_clean"], z["x_gaussian_-5"]])
    qmodel = qat.build_qat_model(model)
    qat.calibrate(qmodel, calib)
    ref = model.predict(x, verbose=0)
    before = keras.ops.convert_to_numpy(qmodel(x, training=False))
    b = qat.error_budget(qmodel, x, ref)
    # No fake quant: the rebuilt graph (BN folded) decides like the float model.
    assert b["none"] >= 0.99
    # Everything on is the QAT model as it runs; and the switches are all back off after.
    after = keras.ops.convert_to_numpy(qmodel(x, training=False))
    np.testing.assert_array_equal(before, after)
    assert b["all"] == round(float(np.mean(np.argmax(after, 1) == np.argmax(ref, 1))), 4)
    # Switching a source off changes the outputs (the switches reach the graph).
    for layer in qmodel.layers:
        if isinstance(layer, qat.QConv1D):
            layer.float_weights = True
    changed = keras.ops.convert_to_numpy(qmodel(x, training=False))
    for layer in qmodel.layers:
        if isinstance(layer, qat.QConv1D):
            layer.float_weights = False
    assert not np.array_equal(changed, after)


def test_quantize_report_has_the_error_budget(report):
    b = report["error_budget"]
    assert b["windows"] > 0
    for stage in ("calibrated", "fine_tuned"):
        assert set(b[stage]) == {"none", "input_only", "weights_only", "activations_only", "all"}
        assert all(0.0 <= v <= 1.0 for v in b[stage].values())


# --- the input contract: the model sees what the board computes ---------------------------

def test_converted_models_take_the_input_contract(quantized, report):
    """Input scale and zero point come from data.input_clip_rms (8 -> 1/16, 0), not from
    calibration: every QAT .tflite carries exactly them, and the reports say so."""
    from drsn_edge import config
    from drsn_edge.preprocess import input_contract
    c = input_contract(config.load(SMOKE))
    assert (c["scale"], c["zero_point"], c["clip_rms"]) == (0.0625, 0, 8.0)
    assert report["input"]["scale"] == 0.0625 and report["input"]["zero_point"] == 0
    for name in ("model_int8.tflite", "model_ptq_int8.tflite", "baseline_int8.tflite"):
        assert parity.input_params((quantized / "model" / name).read_bytes()) == (0.0625, 0), name
    ic = report["input_contract"]
    assert ic["model_trained_on_integer_preprocessing"] is True
    assert (ic["scale"], ic["zero_point"], ic["sensor_full_scale"]) == (0.0625, 0, 8.0)
    assert "Input contract: scale 0.0625" in (quantized / "reports/quantize.md").read_text()


def test_int8_test_vectors_are_the_integer_preprocessing_of_the_raw_windows(quantized, monkeypatch):
    """test.npz holds, per condition, the model inputs and the int16 samples they came from:
    quantizing the model inputs (what `hil`, the parity and the firmware self-test do) gives
    exactly preprocess(samples), the bytes the board's RAW command computes; so `hil` and
    `hil --input raw` stream identical int8 inputs."""
    from drsn_edge import preprocess
    from drsn_edge.int8 import quantize_input
    from runner import hil
    model = (quantized / "model/model_int8.tflite").read_bytes()
    scale, zp = parity.input_params(model)
    with np.load(quantized / "data/test.npz") as z:
        keys = [k for k in z.files if k.startswith("x_")]
        assert len(keys) == 1 + 3 * 2
        for k in keys:
            x, s16 = z[k], z["s16" + k[1:]]
            assert s16.dtype == np.int16 and s16.shape == x.shape[:2]
            q = preprocess.preprocess(s16, scale, zp)
            np.testing.assert_array_equal(quantize_input(x, scale, zp)[..., 0], q)
            # the model inputs are the dequantized bytes themselves, exactly
            np.testing.assert_array_equal(x[..., 0], q.astype(np.float32) * np.float32(scale))
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(quantized))
    from drsn_edge import config
    cfg = config.load(SMOKE)
    inp = hil.model_input_of(model)
    as_int8 = hil.sweep_vectors(cfg, inp)
    as_raw = hil.sweep_vectors(cfg, inp, float(cfg["data"]["sensor_full_scale"]))
    assert as_int8.raw is None and as_raw.raw.dtype == np.int16
    np.testing.assert_array_equal(as_int8.x, as_raw.x)
    np.testing.assert_array_equal(preprocess.preprocess(as_raw.raw, scale, zp).reshape(as_raw.x.shape),
                                  as_int8.x)


def test_a_converted_model_off_the_contract_is_refused(quantized):
    from quantize.pipeline import check_input_contract
    model = (quantized / "model/model_int8.tflite").read_bytes()
    check_input_contract(model, {"scale": 0.0625, "zero_point": 0, "clip_rms": 8.0}, "drsn_cw")
    with pytest.raises(UserError, match=r"drsn_cw: the converted model's input quantization \(scale "
                                        r"0.0625, zero point 0\) is not the input contract \(scale 0.03125"):
        check_input_contract(model, {"scale": 0.03125, "zero_point": 0, "clip_rms": 4.0}, "drsn_cw")


def test_pinned_input_quantizer_passes_grid_values_and_converts_to_the_contract(smoke_build):
    """The QAT input ActQuant pinned to the contract range: calibration and training leave
    it alone, on-grid inputs pass unchanged, and the converter takes scale 1/16, zero point 0
    (also for clip 4: 1/32)."""
    import keras
    import training.models  # noqa: F401
    from drsn_edge.preprocess import contract_range
    from quantize import convert, qat
    model = keras.saving.load_model(smoke_build / "model/model.keras")
    with np.load(smoke_build / "data/calib.npz") as z:
        calib = z["x"][:32]
    for clip in (8.0, 4.0):
        contract = {"scale": clip / 128, "zero_point": 0}
        lo, hi = contract_range(contract)
        assert (lo, hi) == (-clip, clip * 127 / 128)
        qmodel = qat.build_qat_model(model, input_range=(lo, hi))
        qat.calibrate(qmodel, calib)
        first = qat.act_quants(qmodel)[0]
        assert tuple(first.fixed) == (lo, hi)
        assert qat.ranges(qmodel)[first.name] == (lo, hi)
        grid = np.arange(-128, 128, dtype=np.float32) * np.float32(clip / 128)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(first(grid)), grid)
        assert parity.input_params(convert.to_int8_tflite(qmodel, calib, 8)) == (clip / 128, 0)
    # PTQ: the float model behind a pinned input quantizer, its own layers and outputs
    pinned = convert.pin_input(model, (-8.0, 127 / 16))
    assert [l.name for l in model.layers][1:] == [l.name for l in pinned.layers][2:]
    np.testing.assert_array_equal(pinned.predict(calib, verbose=0), model.predict(calib, verbose=0))
    ptq = convert.to_int8_tflite(pinned, calib, 8)
    assert parity.input_params(ptq) == (0.0625, 0)
    assert audit.inspect(ptq, "ptq", [l.name for l in model.layers])["ops"][0]["layer"] == "stem_conv"


# --- parity arithmetic on hand-checked numbers --------------------------------------------

def test_output_metrics_match_hand_computed_values():
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    pred = np.array([[0.5, 0.5], [0.0, 1.0]])
    m = parity.output_metrics(ref, pred)
    assert m["rmse"] == pytest.approx(np.sqrt(0.125))          # sqrt((0.25 + 0.25) / 4)
    assert m["mae"] == pytest.approx(0.25)                      # (0.5 + 0.5) / 4
    assert m["l2r"] == pytest.approx(0.5)                       # sqrt(0.5) / sqrt(2)
    assert m["cos"] == pytest.approx(1.5 / np.sqrt(2 * 1.5))    # <r,p> / (|r| |p|)
    same = parity.output_metrics(ref, ref)
    assert same["rmse"] == same["mae"] == same["l2r"] == 0 and same["cos"] == pytest.approx(1)


def test_lsb_difference_and_agreement():
    a = np.array([[1, 2], [3, 4]], np.int8)
    b = np.array([[1, 5], [3, 4]], np.int8)
    assert parity.lsb_difference(a, b) == {"max_lsb": 3, "share_differing": 0.25, "windows_differing": 0.5}
    assert parity.lsb_difference(np.array([[-128]], np.int8), np.array([[127]], np.int8))["max_lsb"] == 255
    assert parity.agreement(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0.3, 0.7], [0.4, 0.6]])) == 0.5


def test_output_dequantization():
    # (input quantization: tests/test_int8.py)
    assert parity.dequantize(np.array([-128, 127], np.int8), 1 / 256, -128).tolist() == [0.0, 255 / 256]


def test_accuracy_by_condition_and_confusion():
    y = np.array([0, 1, 0, 1])
    slices = [(("clean", None), 0, 2), (("pink", -5.0), 2, 4)]
    acc = parity.accuracy_by_condition(np.array([0, 1, 1, 1]), y, slices)
    assert acc == {"clean": 1.0, "pink": {"-5": 0.5}}
    assert parity.confusion(y, np.array([0, 1, 1, 1]), 2).tolist() == [[1, 1], [0, 2]]


# --- the audit on models that must fail -----------------------------------------------------

def _tiny_float_fallback_tflite(float_only: bool = False) -> bytes:
    """A tiny model whose `-x` becomes a NEG op the int8 builtins lack, converted with the
    float fallback allowed (or not quantized at all)."""
    import tempfile
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="test")
    class Negate(keras.layers.Layer):
        def call(self, x):
            return -x

    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(4, name="proj")(inp)
    out = keras.layers.Dense(2, name="head")(Negate(name="negate")(h))
    model = keras.Model(inp, out)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if not float_only:
            rng = np.random.default_rng(0)
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: ([rng.normal(size=(1, 8)).astype(np.float32)] for _ in range(8))
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        return bytes(conv.convert())


def test_audit_rejects_a_float_fallback_naming_the_op_and_layer():
    model = _tiny_float_fallback_tflite()
    r = audit.inspect(model, "tiny.tflite", ["x", "proj", "negate", "head"])
    assert not r["all_int8"]
    neg = next(o for o in r["ops"] if o["op"] == "NEG")
    assert neg["layer"] == "negate"
    with pytest.raises(UserError, match=r"NEG \(layer 'negate'\)") as exc:
        audit.audit(model, "tiny.tflite", ["x", "proj", "negate", "head"])
    assert "\n" not in str(exc.value) and "float" in str(exc.value)


def test_audit_rejects_a_float_only_model():
    with pytest.raises(UserError, match="float32"):
        audit.audit(_tiny_float_fallback_tflite(float_only=True), "float.tflite")


@pytest.mark.parametrize("damage", ["truncate", "not_tflite", "empty"])
def test_audit_rejects_corrupted_or_truncated_files(quantized, damage):
    good = (quantized / "model/model_int8.tflite").read_bytes()
    bad = {"truncate": good[:len(good) // 2], "not_tflite": b"PK\x03\x04" + good[4:200], "empty": b""}[damage]
    with pytest.raises(UserError, match="corrupted or truncated|not a TFLite flatbuffer"):
        audit.audit(bad, "model_int8.tflite")


def test_audit_command_line(quantized, capsys, tmp_path):
    assert audit.main([str(quantized / "model/model_int8.tflite")]) == 0
    assert "ops int8 for TFLite Micro" in capsys.readouterr().out
    broken = tmp_path / "broken.tflite"
    broken.write_bytes((quantized / "model/model_int8.tflite").read_bytes()[:1000])
    assert audit.main([str(broken)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --- bad input through the CLI: one line, exit 2, nothing written --------------------------

def _assert_clean_failure(build, capsys, message):
    assert _quantize(build) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drsn-edge quantize: error: ") and message in err[0], err
    assert not (build / "model/model_int8.tflite").exists()
    assert not (build / "reports/quantize.json").exists()
    assert not [p for p in build.rglob(".*") if p.is_file()]


def test_missing_model_says_run_make_train(tmp_path, capsys):
    _assert_clean_failure(tmp_path, capsys, "run `make train`")


def test_missing_model_with_data_present(smoke_build, tmp_path, capsys):
    build = _copy_trained(smoke_build, tmp_path)
    (build / "model/model.keras").unlink()
    _assert_clean_failure(build, capsys, "model.keras not found; run `make train`")


def test_data_from_another_input_contract_or_version_is_refused(smoke_build, tmp_path, capsys):
    build = _copy_trained(smoke_build, tmp_path)
    code = main(["quantize", "--config", SMOKE, "--build-dir", str(build), "--set", "data.input_clip_rms=16"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not made with this config's input contract (data.input_clip_rms = 16)" in err[0]
    with np.load(build / "data/test.npz") as z:
        old = {k: z[k] for k in z.files if not k.startswith("s16_")}
    np.savez(build / "data/test.npz", **old)
    _assert_clean_failure(build, capsys, "written by an older drsn-edge (no int16 samples")


def test_representative_dataset_of_the_wrong_shape(smoke_build, tmp_path, capsys):
    build = _copy_trained(smoke_build, tmp_path)
    np.savez(build / "data/calib.npz", x=np.zeros((16, 256, 1), np.float32))
    _assert_clean_failure(build, capsys, "representative windows have shape [16, 256, 1], expected [n, 512, 1]")


def test_model_with_a_layer_that_cannot_be_quantized(smoke_build, tmp_path, capsys):
    import keras
    build = _copy_trained(smoke_build, tmp_path)
    inp = keras.Input((512, 1), name="vibration")
    h = keras.layers.Conv1D(4, 3, padding="same", name="conv")(inp)
    h = keras.layers.LayerNormalization(name="odd_norm")(h)
    out = keras.layers.Dense(10, activation="softmax", name="classifier")(
        keras.layers.GlobalAveragePooling1D(name="gap")(h))
    keras.Model(inp, out).save(build / "model/model.keras")
    _assert_clean_failure(build, capsys, "layer 'odd_norm' (LayerNormalization) cannot be quantized")


def test_corrupted_keras_model(smoke_build, tmp_path, capsys):
    build = _copy_trained(smoke_build, tmp_path)
    (build / "model/model.keras").write_bytes(b"not a zip")
    _assert_clean_failure(build, capsys, "could not be loaded as a Keras model")
