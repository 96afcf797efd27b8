"""`drsn-edge quantize`: float models → int8 .tflite for TFLite Micro, audited and checked.

Reads build/model/{model,baseline}.keras and build/data/*.npz (from `make train`), then:
1. QAT: rebuild each model with fake-quant ops (quantize/qat.py), calibrate the ranges,
   fine-tune a few epochs on fresh noisy windows, convert → model_int8.tflite,
   baseline_int8.tflite;
2. PTQ of the float model with the calibration windows (its input pinned to the input
   contract) → model_ptq_int8.tflite (to show what QAT buys);
3. op audit of every .tflite (quantize/audit.py); the deployed model must be fully int8;
4. host parity on the test sweep: float Keras, QAT Keras, TFLite interpreter, TFLM host
   runtime (quantize/parity.py);
5. reports/quantize.json + quantize.md, plots, and every output of every runtime in
   reports/quantize_outputs.npz.
Everything is computed before anything is written, and each file is written atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError
from drsn_edge.preprocess import contract_range, contract_report, input_contract
from training.augment import Augment
from quantize import audit, convert, parity, qat
from training import dataset

ARTIFACTS = {"qat": "model_int8.tflite", "ptq": "model_ptq_int8.tflite", "baseline": "baseline_int8.tflite"}


def _need(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{path} not found; run `make train` (or `drsn-edge train`) first")
    return path


def load_keras(path: Path):
    import keras
    import training.models  # noqa: F401  registers the custom layers for loading
    try:
        return keras.models.load_model(_need(path), compile=False)
    except UserError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} could not be loaded as a Keras model ({msg}); rerun `make train`") from None


def _npz(path: Path) -> dict:
    try:
        with np.load(_need(path)) as z:
            return {k: z[k] for k in z.files}
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path} is not a readable .npz ({type(exc).__name__}); rerun `make train`") from None


def load_data(cfg: dict) -> dict:
    d = artifacts.paths()["data"]
    train = _npz(d / "train.npz")
    val = _npz(d / "val.npz")
    calib = _npz(d / "calib.npz")
    for name, z, keys in (("train.npz", train, ("x", "y")), ("val.npz", val, ("x", "y")), ("calib.npz", calib, ("x",))):
        missing = [k for k in keys if k not in z]
        if missing:
            raise UserError(f"{d / name} has no {', '.join(missing)}; rerun `make train`")
    test = dataset.load_test(_need(d / "test.npz"))
    window = cfg["data"]["window"]
    convert.check_representative(calib["x"], window, str(d / "calib.npz"))
    convert.check_representative(val["x"], window, str(d / "val.npz"))
    stored = window + Augment.from_config(cfg["train"]).margin(window)
    if train["x"].ndim != 2 or train["x"].shape[1] != stored:
        raise UserError(f"{d / 'train.npz'}: windows have shape {list(train['x'].shape)}, expected "
                        f"[n, {stored}] (data.window plus the augmentation margin); rerun "
                        f"`make train` with this config")
    for kind in cfg["data"]["noise_types"]:
        for s in cfg["eval"]["snr_db"]:
            if (kind, float(s)) not in test:
                raise UserError(f"{d / 'test.npz'} has no {dataset.condition_key(kind, s)}; the config's "
                                f"eval sweep differs from the one trained with; rerun `make train`")
    _check_trained_with_contract(test, input_contract(cfg), d / "test.npz")
    return {"train": (train["x"].astype(np.float32), train["y"]), "val": (val["x"], val["y"]),
            "val_selects": bool(val["selects"]) if "selects" in val else True,
            "calib": calib["x"].astype(np.float32), "test": test, "classes": test["classes"]}


def _check_trained_with_contract(test: dict, contract: dict, path: Path) -> None:
    """The data must come from the integer preprocessing with this config's input contract:
    int16 samples stored, and the model inputs exactly preprocess(samples) dequantized."""
    from drsn_edge.preprocess import dequantize, preprocess
    if "clean" not in test.get("s16", {}):
        raise UserError(f"{path} was written by an older drsn-edge (no int16 samples: not the "
                        f"integer preprocessing); run `make train` again")
    s16, x = test["s16"]["clean"][:64], test["clean"][:64]
    want = dequantize(preprocess(s16, contract["scale"], contract["zero_point"]), contract)
    if want.shape != x.shape[:2] or not np.array_equal(want, x.reshape(want.shape)):
        raise UserError(f"{path} was not made with this config's input contract (data.input_clip_rms = "
                        f"{contract['clip_rms']:g}); rerun `make train` with the same config as quantize")


def _check_model(model, cfg: dict, path: Path, n_classes: int) -> None:
    shape = tuple(model.inputs[0].shape[1:])
    window = cfg["data"]["window"]
    if shape != (window, 1):
        raise UserError(f"{path} takes input {list(shape)} but data.window = {window}; rerun "
                        f"`make train` with this config")
    if model.outputs[0].shape[-1] != n_classes:
        raise UserError(f"{path} has {model.outputs[0].shape[-1]} outputs for {n_classes} classes; "
                        f"rerun `make train`")


def quantize_model(path: Path, data: dict, cfg: dict, name: str) -> dict:
    """QAT one float model: returns the float model, QAT model, .tflite bytes, history."""
    from training.train import seed_everything
    seed_everything(int(cfg["seed"]))
    model = load_keras(path)
    _check_model(model, cfg, path, len(data["classes"]))
    contract = input_contract(cfg)
    qmodel = qat.build_qat_model(model, decay=cfg["quantize"]["ema_decay"],
                                 input_range=contract_range(contract))
    qat.calibrate(qmodel, data["calib"])
    teacher = model if cfg["quantize"]["qat_loss"] == "distill" else None
    history = qat.fine_tune(qmodel, data, cfg, name, teacher=teacher)
    tflite = convert.to_int8_tflite(qmodel, data["calib"], cfg["quantize"]["representative_windows"])
    check_input_contract(tflite, contract, name)
    return {"float": model, "qat": qmodel, "tflite": tflite, "history": history,
            "layers": [layer.name for layer in model.layers]}


def check_input_contract(tflite: bytes, contract: dict, name: str) -> None:
    """The converted model's input tensor must carry exactly the contract's scale and zero
    point: the board's preprocessing (and the HIL raw path) quantize with them, and the
    model was trained on that grid."""
    scale, zp = parity.input_params(tflite)
    if scale != np.float32(contract["scale"]) or zp != contract["zero_point"]:
        raise UserError(f"{name}: the converted model's input quantization (scale {scale!r}, zero "
                        f"point {zp}) is not the input contract (scale {contract['scale']!r}, zero point "
                        f"{contract['zero_point']}, data.input_clip_rms = {contract['clip_rms']:g}); "
                        f"the model would see other inputs than it was trained on")


def _meanwhile(runs, main: dict, ptq: bytes, data: dict, cfg: dict, x, slices, seconds: dict):
    """What quantize does while the deployed model's interpreter passes run: the baseline's
    QAT (its own pass is queued behind them), the op audits, the Keras passes over the sweep
    and the error budget. Returns (base, audits, outs, budget, (baseline float, QAT probs))."""
    qc = cfg["quantize"]
    base, b_probs = None, None
    if cfg["model"].get("baseline"):
        t0 = time.perf_counter()
        base = quantize_model(artifacts.paths()["model"] / "baseline.keras", data, cfg, cfg["model"]["baseline"])
        seconds["qat_baseline"] = time.perf_counter() - t0
        runs.submit("baseline_tflite", parity.run_tflite_fast, base["tflite"], "TFLite baseline")

    # --- audit --------------------------------------------------------------------------
    # The deployed model must be fully int8; the others are reported as they are.
    audits = {"model_int8": audit.audit(main["tflite"], ARTIFACTS["qat"], main["layers"]),
              "model_ptq_int8": audit.inspect(ptq, ARTIFACTS["ptq"], main["layers"])}
    if base:
        audits["baseline_int8"] = audit.inspect(base["tflite"], ARTIFACTS["baseline"], base["layers"])

    # --- Keras passes, error budget -----------------------------------------------------
    t0 = time.perf_counter()
    outs = {"float": _probs(main["float"], x), "qat": _probs(main["qat"], x)}
    seconds["keras_inference"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # About 100 windows of every condition, spread over its seen and unseen parts.
    budget_idx = np.concatenate([np.arange(a, b, max(1, (b - a) // 100)) for _, a, b in slices])
    fresh = qat.build_qat_model(main["float"], decay=qc["ema_decay"],
                                input_range=contract_range(input_contract(cfg)))
    qat.calibrate(fresh, data["calib"])
    budget = {"windows": int(len(budget_idx)),
              "calibrated": qat.error_budget(fresh, x[budget_idx], outs["float"][budget_idx]),
              "fine_tuned": qat.error_budget(main["qat"], x[budget_idx], outs["float"][budget_idx])}
    seconds["error_budget"] = time.perf_counter() - t0
    if base:
        t0 = time.perf_counter()
        b_probs = (_probs(base["float"], x), _probs(base["qat"], x))
        seconds["baseline_inference"] = time.perf_counter() - t0
    return base, audits, outs, budget, b_probs


def _probs(model, x) -> np.ndarray:
    return model.predict(x, batch_size=256, verbose=0)


def run(cfg: dict) -> dict:
    import tensorflow as tf
    from training import plots
    # Keras' predict on several models warns about retracing; it is expected here.
    tf.get_logger().setLevel("ERROR")
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    qc = _check_cfg(cfg)
    p = artifacts.paths()
    kinds, snrs = cfg["data"]["noise_types"], cfg["eval"]["snr_db"]

    # --- inputs -------------------------------------------------------------------------
    data = load_data(cfg)
    classes = data["classes"]
    has_baseline = bool(cfg["model"].get("baseline"))
    _need(p["model"] / "model.keras")
    if has_baseline:
        _need(p["model"] / "baseline.keras")

    # --- QAT + conversion ---------------------------------------------------------------
    t0 = time.perf_counter()
    main = quantize_model(p["model"] / "model.keras", data, cfg, cfg["model"]["arch"])
    seconds["qat_model"] = time.perf_counter() - t0
    # The deployed model's interpreter passes start now, on the cores, while this thread
    # goes on with the PTQ conversion, the baseline's QAT, the Keras passes and the error
    # budget (_meanwhile).
    t_interp = time.perf_counter()
    x, y, slices = parity.stack_conditions(data["test"], kinds, snrs, qc["parity_windows"])
    runs = parity.Interpreters(x)
    runs.submit("tflm", parity.run_tflm, main["tflite"], "TFLM int8")
    runs.submit("tflite", parity.run_tflite, main["tflite"], "TFLite int8")
    try:
        t0 = time.perf_counter()
        ptq = convert.to_int8_tflite(convert.pin_input(main["float"], contract_range(input_contract(cfg))),
                                     data["calib"], qc["representative_windows"])
        check_input_contract(ptq, input_contract(cfg), "PTQ")
        seconds["ptq"] = time.perf_counter() - t0
        runs.submit("ptq", parity.run_tflite_fast, ptq, "TFLite PTQ")
        base, audits, outs, budget, b_probs = _meanwhile(runs, main, ptq, data, cfg, x, slices, seconds)
    except BaseException:
        runs.abandon()
        raise
    int8 = runs.results()
    # From the deployed model's conversion to the last interpreter pass (overlaps _meanwhile).
    seconds["interpreters"] = time.perf_counter() - t_interp
    main_audit = audits["model_int8"]
    out_scale, out_zp = main_audit["output"]["scale"], main_audit["output"]["zero_point"]
    ptq_scale, ptq_zp = audits["model_ptq_int8"]["output"]["scale"], audits["model_ptq_int8"]["output"]["zero_point"]
    outs["tflite"] = parity.dequantize(int8["tflite"], out_scale, out_zp)
    outs["tflm"] = parity.dequantize(int8["tflm"], out_scale, out_zp)
    outs["ptq"] = parity.dequantize(int8["ptq"], ptq_scale, ptq_zp)

    accuracy = {k: parity.accuracy_by_condition(np.argmax(v, axis=1), y, slices)
                for k, v in outs.items()}
    agreement = {k: round(parity.agreement(outs["float"], outs[k]), 4) for k in ("qat", "ptq", "tflite", "tflm")}
    # How faithfully the int8 runtimes execute the fake-quant model they were converted from.
    agreement_qat = {k: round(parity.agreement(outs["qat"], outs[k]), 4) for k in ("tflite", "tflm")}
    metrics = {k: parity.output_metrics(outs["float"], outs[k]) for k in ("qat", "ptq", "tflite", "tflm")}
    tvt = parity.lsb_difference(int8["tflite"], int8["tflm"])
    tvt["top1_agreement"] = round(parity.agreement(int8["tflite"], int8["tflm"]), 4)

    baseline = None
    if base:
        b_audit = audits["baseline_int8"]
        b_int8 = int8.pop("baseline_tflite")
        b_deq = parity.dequantize(b_int8, b_audit["output"]["scale"], b_audit["output"]["zero_point"])
        b_float, b_qat = b_probs
        baseline = {
            "arch": cfg["model"]["baseline"],
            "accuracy": {"float": parity.accuracy_by_condition(np.argmax(b_float, 1), y, slices),
                         "qat": parity.accuracy_by_condition(np.argmax(b_qat, 1), y, slices),
                         "tflite": parity.accuracy_by_condition(np.argmax(b_deq, 1), y, slices)},
            "agreement_with_float": {"qat": round(parity.agreement(b_float, b_qat), 4),
                                     "tflite": round(parity.agreement(b_float, b_deq), 4)},
            "metrics_vs_float": {"tflite": parity.output_metrics(b_float, b_deq)},
            "all_int8": b_audit["all_int8"],
            "sizes": b_audit["sizes"],
            "qat_best_epoch": base["history"]["best_epoch"],
        }
        int8["baseline_tflite"] = b_int8

    lowest = min(snrs)
    low_slice = next((a, b) for (c, a, b) in slices if c == (kinds[0], float(lowest)))
    conf = parity.confusion(y[low_slice[0]:low_slice[1]],
                            np.argmax(outs["tflm"][low_slice[0]:low_slice[1]], 1), len(classes))
    seconds["total"] = time.perf_counter() - t_start
    report = build_report(cfg, classes, main, audits, accuracy, agreement, metrics, tvt, baseline, conf,
                          seconds, len(y) // len(slices))
    report["agreement_with_qat"] = agreement_qat
    report["error_budget"] = budget
    per = len(y) // len(slices)
    report["by_condition"] = by_condition(outs, y, slices, np.tile(data["test"]["unseen"][:per], len(slices)), qc)

    # --- write --------------------------------------------------------------------------
    artifacts.write_bytes(p["model"] / ARTIFACTS["qat"], main["tflite"])
    artifacts.write_bytes(p["model"] / ARTIFACTS["ptq"], ptq)
    if base:
        artifacts.write_bytes(p["model"] / ARTIFACTS["baseline"], base["tflite"])
    with artifacts.atomic_path(p["reports"] / "quantize_outputs.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, y=y, conditions=np.array([dataset.condition_key(*c) if c[0] != "clean" else "x_clean"
                                                  for c, _, _ in slices]),
                     float=outs["float"], qat=outs["qat"], **{f"{k}_int8": v for k, v in int8.items()},
                     **tflm_provenance(main["tflite"], x))
    curves = {f"{cfg['model']['arch']} float": accuracy["float"], "QAT (Keras)": accuracy["qat"],
              "PTQ int8 (TFLite)": accuracy["ptq"], "QAT int8 (TFLite)": accuracy["tflite"],
              "QAT int8 (TFLM)": accuracy["tflm"]}
    if baseline:
        curves[f"{baseline['arch']} float"] = baseline["accuracy"]["float"]
        curves[f"{baseline['arch']} int8 (TFLite)"] = baseline["accuracy"]["tflite"]
    plots.accuracy_vs_snr(curves, p["plots"] / "quantize_accuracy_vs_snr.png",
                          title="float vs int8 (same test windows)")
    plots.confusion_matrix(conf, classes, p["plots"] / "quantize_confusion_tflm.png",
                           title=f"int8 TFLM, {cfg['model']['arch']} at {lowest} dB ({kinds[0]} noise)")
    report["seconds"]["total"] = round(time.perf_counter() - t_start, 1)
    artifacts.write_json(p["reports"] / "quantize.json", report)
    artifacts.write_text(p["reports"] / "quantize.md", markdown(report))
    t = report["targets"]
    print(f"quantize: wrote {p['model'] / ARTIFACTS['qat']} ({main_audit['sizes']['model_bytes']} bytes, "
          f"{len(main_audit['ops'])} ops, all int8), {p['reports'] / 'quantize.json'} "
          f"({report['seconds']['total']:.0f} s)")
    print(f"int8 TFLM vs float: worst drop {t['worst_drop_pp']:+.1f} pp at {t['worst_condition']} "
          f"(target <= {t['max_drop_pp']}: {'pass' if t['meets_accuracy'] else 'FAIL'}), top-1 agreement "
          f"{100 * agreement['tflm']:.2f} % (target >= {100 * t['min_agreement']:.0f} %: "
          f"{'pass' if t['meets_agreement'] else 'FAIL'}); TFLite vs TFLM max {tvt['max_lsb']} LSB")
    return report


def tflm_provenance(model_bytes: bytes, x: np.ndarray) -> dict:
    """What tflm_int8 was computed from: the model's SHA-256 and a digest of every int8
    input, so that `drsn-edge hil` can take TFLM's answer for the inputs it streams from here
    instead of running TFLM over the sweep a second time."""
    import hashlib
    from firmware_gen import tflm_oracle
    inp = tflm_oracle.model_inputs(model_bytes)[0]
    q = parity.quantize_input(x, inp.scale, inp.zero_point)
    return {"tflm_model_sha256": np.array(hashlib.sha256(model_bytes).hexdigest()),
            "tflm_input_digest": tflm_oracle.digests(q)}


def _check_cfg(cfg: dict) -> dict:
    # Keys and ranges are checked by config.load (drsn_edge/schema.py).
    return cfg["quantize"]


def build_report(cfg, classes, main, audits, accuracy, agreement, metrics, tvt, baseline, conf,
                 seconds, per_condition) -> dict:
    qc = cfg["quantize"]
    a = audits["model_int8"]
    return {
        "stage": "quantize",
        "config": cfg.get("_source"),
        "seed": cfg["seed"],
        "classes": classes,
        "method": {
            "qat": "Keras 3 fake quant: per-channel int8 conv weights, per-tensor FC weights, BN folded, "
                   "EMA-tracked 8-bit activation ranges on every quantized tensor incl. the shrinkage path",
            "qat_loss": qc["qat_loss"], "qat_selected_by": main["history"]["selected_by"],
            "qat_epochs": qc["qat_epochs"], "qat_learning_rate": qc["qat_learning_rate"],
            "ema_decay": qc["ema_decay"], "qat_best_epoch": main["history"]["best_epoch"],
            "qat_val_accuracy": main["history"]["val_accuracy"],
            "qat_val_score": main["history"]["val_score"],
            "representative_windows": qc["representative_windows"],
            "test_windows_per_condition": per_condition,
            # The pass compared with TFLM runs TFLite's reference kernels; the ones that only
            # give an accuracy run its optimised builtins (never XNNPACK).
            "tflite_kernels": {"qat": "reference", "ptq": "optimised builtins",
                               "baseline": "optimised builtins"},
        },
        "artifacts": {"model_int8": f"model/{ARTIFACTS['qat']}", "model_ptq_int8": f"model/{ARTIFACTS['ptq']}",
                      "baseline_int8": f"model/{ARTIFACTS['baseline']}" if baseline else None,
                      "outputs": "reports/quantize_outputs.npz",
                      "plots": ["reports/plots/quantize_accuracy_vs_snr.png",
                                "reports/plots/quantize_confusion_tflm.png"]},
        "ops": [{"index": o["index"], "op": o["op"], "layer": o["layer"],
                 "inputs": [{k: t[k] for k in ("dtype", "shape", "const")} for t in o["inputs"]],
                 "outputs": [{k: t[k] for k in ("dtype", "shape")} for t in o["outputs"]]} for o in a["ops"]],
        "op_counts": a["op_counts"],
        "all_int8": a["all_int8"],
        "audit": {k: {"all_int8": v["all_int8"], "problems": v["problems"], "op_counts": v["op_counts"]}
                  for k, v in audits.items()},
        "input": {k: a["input"][k] for k in ("scale", "zero_point", "shape", "dtype")},
        "input_contract": contract_report(input_contract(cfg)),
        "output": {k: a["output"][k] for k in ("scale", "zero_point", "shape", "dtype")},
        "sizes": a["sizes"],
        "sizes_ptq": audits["model_ptq_int8"]["sizes"],
        "accuracy": accuracy,
        "agreement_with_float": agreement,
        "metrics_vs_float": metrics,
        "tflite_vs_tflm": tvt,
        "tflite_vs_tflm_max_lsb": tvt["max_lsb"],
        "confusion_tflm_lowest_snr": {"noise": cfg["data"]["noise_types"][0],
                                      "snr_db": float(min(cfg["eval"]["snr_db"])), "matrix": conf.tolist()},
        "baseline": baseline,
        "targets": targets(accuracy["float"], accuracy["tflm"], agreement["tflm"], qc),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def targets(acc_float: dict, acc_tflm: dict, agreement: float, qc: dict) -> dict:
    """int8 TFLM vs float: the worst per-condition accuracy drop and the top-1 agreement,
    against quantize.max_drop_pp and quantize.min_agreement."""
    drops = []
    for k in acc_float:
        if k == "clean":
            continue
        for s, v in acc_float[k].items():
            drops.append((round(100 * (v - acc_tflm[k][s]), 2), f"{k} {s} dB"))
    drops.append((round(100 * (acc_float["clean"] - acc_tflm["clean"]), 2), "clean"))
    worst = max(drops)
    return {"max_drop_pp": qc["max_drop_pp"], "worst_drop_pp": worst[0], "worst_condition": worst[1],
            "meets_accuracy": worst[0] <= qc["max_drop_pp"],
            "min_agreement": qc["min_agreement"], "agreement": agreement,
            "meets_agreement": agreement >= qc["min_agreement"],
            "drop_pp": {c: d for d, c in drops}}


def by_condition(outs: dict, y: np.ndarray, slices, unseen: np.ndarray, qc: dict) -> dict:
    """Float vs int8 TFLM on the seen and on the unseen operating conditions separately:
    accuracy, agreement and the targets for each part of the sweep that exists."""
    out = {}
    for part, keep in (("seen", ~unseen), ("unseen", unseen)):
        if not keep.any():
            continue
        idx = np.flatnonzero(keep)
        sub = []
        for cond, a, b in slices:
            inside = idx[(idx >= a) & (idx < b)]
            sub.append((cond, inside))
        order = np.concatenate([i for _, i in sub])
        bounds = np.cumsum([0] + [len(i) for _, i in sub])
        part_slices = [(c, int(bounds[j]), int(bounds[j + 1])) for j, (c, _) in enumerate(sub)]
        acc = {k: parity.accuracy_by_condition(np.argmax(outs[k][order], axis=1), y[order], part_slices)
               for k in ("float", "tflm")}
        agree = round(parity.agreement(outs["float"][order], outs["tflm"][order]), 4)
        out[part] = {"windows_per_condition": int(bounds[1]), "accuracy": acc,
                     "agreement_with_float": agree, "targets": targets(acc["float"], acc["tflm"], agree, qc)}
    return out


def budget_markdown(b: dict | None) -> list[str]:
    if not b:
        return []
    keys = ("none", "input_only", "weights_only", "activations_only", "all")
    return ["## Where the agreement goes", "",
            f"Top-1 agreement with the float model on {b['windows']} test windows (about 100 per "
            f"condition), the QAT model run with one source of int8 error switched on at a time:", "",
            "| QAT model | no fake quant | input window only | weights only | activations only | all |",
            "|---|---|---|---|---|---|",
            *[f"| {label} | " + " | ".join(f"{100 * b[stage][k]:.1f} %" for k in keys) + " |"
              for stage, label in (("calibrated", "calibrated, before fine-tuning"),
                                   ("fine_tuned", "after fine-tuning (deployed)"))],
            "", "Before fine-tuning, each column is what that source alone costs. After it, the "
            "no-fake-quant column shows how far fine-tuning moved the weights to absorb the int8 "
            "errors. Windows the float model itself barely decides (top-2 margin under a few %) "
            "flip first.", ""]


def _contract_line(c: dict) -> str:
    return (f"Input contract: scale {c['scale']:g} (data.input_clip_rms = {c['clip_rms']:g} RMS), zero point "
            f"{c['zero_point']}, fixed, not calibrated; the model was trained and evaluated on the board's "
            f"integer preprocessing (int16 at full scale {c['sensor_full_scale']:g}, "
            f"`drsn_edge/preprocess.py`), so the int8 inputs here are the bytes the device computes.\n")


def markdown(r: dict) -> str:
    kinds = [k for k in r["accuracy"]["float"] if k != "clean"]
    snrs = list(r["accuracy"]["float"][kinds[0]].keys())
    names = {"float": "float (Keras)", "qat": "QAT (Keras, fake quant)", "ptq": "PTQ int8 (TFLite)",
             "tflite": "QAT int8 (TFLite)", "tflm": "QAT int8 (TFLM)"}
    rows = []
    for key, label in names.items():
        acc = r["accuracy"][key]
        for k in kinds:
            rows.append(f"| {label} | {k} | " + " | ".join(f"{100 * acc[k][s]:.1f}" for s in snrs)
                        + f" | {100 * acc['clean']:.1f} |")
    b = r["baseline"]
    if b:
        for key in ("float", "tflite"):
            for k in kinds:
                acc = b["accuracy"][key]
                rows.append(f"| {b['arch']} {'float' if key == 'float' else 'QAT int8 (TFLite)'} | {k} | "
                            + " | ".join(f"{100 * acc[k][s]:.1f}" for s in snrs) + f" | {100 * acc['clean']:.1f} |")
    t = r["targets"]
    m = r["metrics_vs_float"]
    tvt = r["tflite_vs_tflm"]
    lines = [
        "# Quantization report",
        "",
        f"Config `{r['config']}`, seed {r['seed']}. QAT ({r['method']['qat_loss']}): {r['method']['qat_epochs']} "
        f"epochs at learning rate "
        f"{r['method']['qat_learning_rate']:g} (best epoch kept: {r['method']['qat_best_epoch']}; 0 = calibrated "
        f"ranges before fine-tuning). {r['method']['test_windows_per_condition']} test windows per condition. "
        f"Run took {r['seconds']['total']:.0f} s.",
        "",
        f"`{r['artifacts']['model_int8']}`: {r['sizes']['model_bytes']:,} bytes, {len(r['ops'])} ops, "
        f"{'all int8 for TFLite Micro' if r['all_int8'] else 'NOT all int8'}; input scale "
        f"{r['input']['scale']:.6g} zero point {r['input']['zero_point']}, output scale "
        f"{r['output']['scale']:.6g} zero point {r['output']['zero_point']}.",
        "",
        *([_contract_line(r["input_contract"])] if r.get("input_contract") else []),
        "## Targets",
        "",
        f"- int8 TFLM within {t['max_drop_pp']} pp of float at every condition: worst "
        f"{t['worst_drop_pp']:+.1f} pp at {t['worst_condition']} — **{'pass' if t['meets_accuracy'] else 'FAIL'}**"
        + ("" if t["meets_accuracy"] else f" (over by {t['worst_drop_pp'] - t['max_drop_pp']:.1f} pp)"),
        f"- top-1 agreement of int8 TFLM with float ≥ {100 * t['min_agreement']:.0f} %: "
        f"{100 * t['agreement']:.2f} % — **{'pass' if t['meets_agreement'] else 'FAIL'}**"
        + ("" if t["meets_agreement"] else f" (short by {100 * (t['min_agreement'] - t['agreement']):.2f} pp)"),
        *[f"- {part} operating conditions ({v['windows_per_condition']} windows per condition): worst drop "
          f"{v['targets']['worst_drop_pp']:+.1f} pp at {v['targets']['worst_condition']} "
          f"({'pass' if v['targets']['meets_accuracy'] else 'FAIL'}), agreement "
          f"{100 * v['agreement_with_float']:.2f} % ({'pass' if v['targets']['meets_agreement'] else 'FAIL'})"
          for part, v in r.get("by_condition", {}).items()],
        "",
        *budget_markdown(r.get("error_budget")),
        "## Accuracy (%) on the same test windows",
        "",
        "| model | noise | " + " | ".join(f"{s} dB" for s in snrs) + " | clean |",
        "|---|---|" + "---|" * (len(snrs) + 1),
        *rows,
        "",
        "## Outputs against the float model",
        "",
        "| run | top-1 agreement | RMSE | MAE | L2r | COS |",
        "|---|---|---|---|---|---|",
        *[f"| {names[k]} | {100 * r['agreement_with_float'][k]:.2f} % | {m[k]['rmse']:.4f} | {m[k]['mae']:.4f} | "
          f"{m[k]['l2r']:.4f} | {m[k]['cos']:.5f} |" for k in ("qat", "ptq", "tflite", "tflm")],
        "",
        f"TFLite interpreter (reference kernels; the PTQ and baseline passes run its optimised builtins) vs "
        f"TFLM host runtime (same int8 model and inputs): max {tvt['max_lsb']} LSB, "
        f"{100 * tvt['share_differing']:.2f} % of output values differ ({100 * tvt['windows_differing']:.2f} % of "
        f"windows), top-1 agreement {100 * tvt['top1_agreement']:.2f} %. The device must match TFLM. "
        f"Top-1 agreement with the QAT Keras model they were converted from: TFLite "
        f"{100 * r['agreement_with_qat']['tflite']:.2f} %, TFLM {100 * r['agreement_with_qat']['tflm']:.2f} %.",
        "",
        "## Op audit",
        "",
        "| model | all int8 | ops |",
        "|---|---|---|",
        *[f"| {k} | {'yes' if v['all_int8'] else 'no: ' + '; '.join(v['problems'][:2])} | "
          + ", ".join(f"{op} ×{n}" for op, n in sorted(v["op_counts"].items())) + " |"
          for k, v in r["audit"].items()],
        "",
        "![accuracy vs SNR](plots/quantize_accuracy_vs_snr.png)",
        "",
        "![TFLM confusion at the lowest SNR](plots/quantize_confusion_tflm.png)",
        "",
        "Seconds: " + ", ".join(f"{k} {v:g}" for k, v in r["seconds"].items()) + ".",
        "",
    ]
    return "\n".join(lines)
