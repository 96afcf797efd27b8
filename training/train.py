"""`drsn-edge train`: data → DRSN and the same-size ResNet baseline → accuracy vs SNR.

Reads top to bottom like a Keras example: data, model, compile, fit, evaluate, report.
Writes build/model/model.keras (the chosen arch), build/model/baseline.keras,
build/reports/train.json + train.md and the plots under build/reports/plots/.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError
from training import dataset


def linear_baseline(data: dict, cfg: dict) -> dict:
    """How hard the task is: a linear classifier on the log spectrum, trained on the same
    noisy training windows the networks see, scored on every test condition."""
    from training.signals import spectral_baseline
    x, y = dataset.NoisyEpochs(*data["train"], cfg["data"]["noise_types"],
                               cfg["data"]["snr_db_range"], int(cfg["seed"])).epoch(0)
    test = data["test"]
    out = {"clean": round(spectral_baseline(x[..., 0], y, test["x_clean"][..., 0], test["y"]), 4)}
    for kind in cfg["data"]["noise_types"]:
        out[kind] = {dataset.format_snr(s): round(spectral_baseline(
            x[..., 0], y, test[dataset.condition_key(kind, s)][..., 0], test["y"]), 4)
            for s in cfg["eval"]["snr_db"]}
    return out


def seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf
    # Fresh name counters too: auto-generated names ("adam_w_1") end up in the saved file.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    # Same config and seed must give a bit-identical model: deterministic kernels only.
    tf.config.experimental.enable_op_determinism()


class EpochBar:
    """One progress bar per model, an update per epoch with the numbers that matter."""

    def __init__(self, name: str, epochs: int):
        from tqdm import tqdm
        self.bar = tqdm(total=epochs, desc=f"train {name:8s}", unit="epoch", dynamic_ncols=True,
                        mininterval=0)

    def update(self, logs: dict) -> None:
        self.bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['accuracy']:.3f}",
                             val_acc=f"{logs['val_accuracy']:.3f}", lr=f"{logs['lr']:.1e}")
        self.bar.update(1)

    def close(self, note: str = "") -> None:
        if note:
            self.bar.set_description_str(f"{self.bar.desc} ({note})")
        self.bar.close()


def fit(model, data: dict, cfg: dict, name: str) -> dict:
    """Train with fresh noise each epoch, a cosine learning-rate schedule and early stopping
    on validation accuracy (keeping the best epoch's weights). Returns the history."""
    import keras
    t = cfg["train"]
    x_clean, y = data["train"]
    x_val, y_val = data["val"]
    feed = dataset.NoisyEpochs(x_clean, y, cfg["data"]["noise_types"],
                               cfg["data"]["snr_db_range"], int(cfg["seed"]))
    steps = -(-len(x_clean) // t["batch_size"])
    if t["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(t["learning_rate"], decay_steps=t["epochs"] * steps,
                                                    alpha=0.02)
    else:  # "constant" (config.load allows nothing else)
        lr = t["learning_rate"]
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=t["weight_decay"],
                                 name="adamw")
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "lr": []}
    best, best_epoch, best_weights, waited = -1.0, 0, None, 0
    bar = EpochBar(name, t["epochs"])
    for epoch in range(t["epochs"]):
        x, yy = feed.epoch(epoch)
        h = model.fit(x, yy, batch_size=t["batch_size"], epochs=1, shuffle=False, verbose=0)
        val_loss, val_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
        logs = {"loss": h.history["loss"][0], "accuracy": h.history["accuracy"][0],
                "val_loss": val_loss, "val_accuracy": val_acc,
                "lr": float(keras.ops.convert_to_numpy(opt.learning_rate))}
        for k, v in logs.items():
            history[k].append(float(v))
        bar.update(logs)
        if val_acc > best:
            best, best_epoch, best_weights, waited = val_acc, epoch, model.get_weights(), 0
        else:
            waited += 1
            # Validation accuracy jumps around while the learning rate is high; stopping is
            # only allowed in the second half of the schedule.
            if waited >= t["patience"] and epoch + 1 >= t["epochs"] // 2:
                bar.close(f"early stop, best epoch {best_epoch + 1}")
                break
    else:
        bar.close()
    model.set_weights(best_weights)
    history["best_epoch"] = best_epoch + 1
    history["epochs_run"] = len(history["loss"])
    return history


def evaluate(model, test: dict, cfg: dict) -> dict:
    """Accuracy per noise type and SNR ({noise: {snr_db: acc}}), plus clean accuracy."""
    y = test["y"]
    acc = {"clean": _accuracy(model, test["x_clean"], y)}
    for kind in cfg["data"]["noise_types"]:
        acc[kind] = {dataset.format_snr(s): _accuracy(model, test[dataset.condition_key(kind, s)], y)
                     for s in cfg["eval"]["snr_db"]}
    return acc


def _accuracy(model, x, y) -> float:
    p = model.predict(x, batch_size=256, verbose=0)
    return round(float(np.mean(np.argmax(p, axis=1) == y)), 4)


def confusion(model, x, y, n_classes: int) -> np.ndarray:
    pred = np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1)
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def save_model(model, path) -> str:
    """Save a .keras file whose bytes depend only on the weights and architecture: Keras
    stamps the save date into the archive, which would break bit-identical reruns."""
    with artifacts.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        raw = tmp.read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in sorted(zin.infolist(), key=lambda i: i.filename):
                body = zin.read(info.filename)
                if info.filename == "metadata.json":
                    meta = json.loads(body)
                    meta.pop("date_saved", None)
                    body = json.dumps(meta, sort_keys=True).encode()
                elif info.filename == "config.json":
                    body = _stable_object_ids(body)
                zout.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), body)
        tmp.write_bytes(buf.getvalue())
    return weights_sha256(model)


def _stable_object_ids(config_json: bytes) -> bytes:
    """Keras names shared objects by their memory address; renumber them in order of
    appearance so the config is the same from run to run."""
    ids: dict[int, int] = {}

    def walk(node):
        if isinstance(node, dict):
            if "shared_object_id" in node:
                node["shared_object_id"] = ids.setdefault(node["shared_object_id"], len(ids) + 1)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    cfg = json.loads(config_json)
    walk(cfg)
    return json.dumps(cfg).encode()


def weights_sha256(model) -> str:
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def describe(model) -> dict:
    from training import models
    return {
        "arch": model.name,
        "params": int(model.count_params()),
        "macs": models.macs(model),
        "int8_weight_bytes": models.weight_bytes_int8(model),
        "activation_peak_bytes_est": models.activation_peak_bytes(model),
    }


def run(cfg: dict) -> dict:
    from training import models, plots
    t_start = time.perf_counter()
    seed = int(cfg["seed"])
    p = artifacts.paths()

    # --- data ------------------------------------------------------------------------------
    data = dataset.prepare(cfg)
    classes = data["classes"]
    window = cfg["data"]["window"]
    print(f"data: {len(classes)} classes, {len(data['train'][1])} train / {len(data['val'][1])} val / "
          f"{len(data['test']['y'])} test windows per condition ({data['seconds']:.1f} s)")
    linear = linear_baseline(data, cfg)
    print(f"linear spectral baseline: clean {linear['clean']:.3f}, "
          f"mean at {cfg['eval']['snr_db'][0]} dB "
          f"{np.mean([linear[k][dataset.format_snr(cfg['eval']['snr_db'][0])] for k in cfg['data']['noise_types']]):.3f}")

    # --- models ----------------------------------------------------------------------------
    results = {}
    archs = [("model", cfg["model"]["arch"])]
    if cfg["model"].get("baseline"):
        archs.append(("baseline", cfg["model"]["baseline"]))
    for role, arch in archs:
        seed_everything(seed)
        model = models.build(arch, window, len(classes), cfg["model"])
        t0 = time.perf_counter()
        history = fit(model, data, cfg, arch)
        seconds = time.perf_counter() - t0
        acc = evaluate(model, data["test"], cfg)
        digest = save_model(model, p["model"] / f"{role}.keras")
        results[role] = {
            **describe(model),
            "accuracy": acc,
            "history": history,
            "train_seconds": round(seconds, 1),
            "weights_sha256": digest,
            "confusion_lowest_snr": confusion(
                model, data["test"][dataset.condition_key(cfg["data"]["noise_types"][0],
                                                          cfg["eval"]["snr_db"][0])],
                data["test"]["y"], len(classes)).tolist(),
        }

    # --- report ----------------------------------------------------------------------------
    report = build_report(cfg, classes, results, linear, time.perf_counter() - t_start)
    plots.training_curves({r["arch"]: r["history"] for r in results.values()},
                          p["plots"] / "train_curves.png")
    plots.accuracy_vs_snr({r["arch"]: r["accuracy"] for r in results.values()},
                          p["plots"] / "train_accuracy_vs_snr.png", linear=linear)
    plots.confusion_matrix(np.array(results["model"]["confusion_lowest_snr"]), classes,
                           p["plots"] / "train_confusion.png",
                           title=f"{results['model']['arch']} at {cfg['eval']['snr_db'][0]} dB "
                                 f"({cfg['data']['noise_types'][0]} noise)")
    artifacts.write_json(p["reports"] / "train.json", report)
    artifacts.write_text(p["reports"] / "train.md", markdown(report))
    print(f"train: wrote {p['model'] / 'model.keras'}, {p['reports'] / 'train.json'} "
          f"({report['seconds']:.0f} s)")
    gap = report["comparison"]["gap_at_lowest_snr_pp"]
    if gap is not None:
        print(f"{report['model']['arch']} vs {report['baseline']['arch']} at "
              f"{report['comparison']['lowest_snr_db']} dB: {gap:+.1f} percentage points (target >= +3)")
    return report


def build_report(cfg, classes, results, linear, seconds) -> dict:
    model = results["model"]
    base = results.get("baseline")
    lowest = dataset.format_snr(min(cfg["eval"]["snr_db"]))
    kinds = cfg["data"]["noise_types"]

    def mean_at(acc, snr):
        return float(np.mean([acc[k][snr] for k in kinds]))

    comparison = {"lowest_snr_db": float(lowest), "gap_at_lowest_snr_pp": None, "per_snr_pp": {}}
    if base:
        for s in cfg["eval"]["snr_db"]:
            key = dataset.format_snr(s)
            comparison["per_snr_pp"][key] = round(100 * (mean_at(model["accuracy"], key)
                                                         - mean_at(base["accuracy"], key)), 2)
        comparison["gap_at_lowest_snr_pp"] = comparison["per_snr_pp"][lowest]
        comparison["target_pp"] = 3.0
        comparison["meets_target"] = comparison["gap_at_lowest_snr_pp"] >= 3.0
    return {
        "stage": "train",
        "config": cfg.get("_source"),
        "seed": cfg["seed"],
        "classes": classes,
        "data": {"source": cfg["data"]["source"], "window": cfg["data"]["window"],
                 "fs_hz": cfg["data"]["fs_hz"], "noise_types": kinds,
                 "train_snr_db_range": cfg["data"]["snr_db_range"],
                 "linear_spectral_baseline": linear},
        "model": {k: v for k, v in model.items() if k != "history"} | {"best_epoch": model["history"]["best_epoch"],
                                                                        "epochs_run": model["history"]["epochs_run"]},
        "params": model["params"],
        "macs": model["macs"]["total"],
        "accuracy": model["accuracy"],
        "baseline": ({k: v for k, v in base.items() if k != "history"} |
                     {"best_epoch": base["history"]["best_epoch"], "epochs_run": base["history"]["epochs_run"]})
        if base else None,
        "comparison": comparison,
        "budget": {"int8_weight_bytes_max": 64 * 1024, "arena_bytes_max": 32 * 1024,
                   "fits": model["int8_weight_bytes"] <= 64 * 1024
                   and model["activation_peak_bytes_est"] <= 32 * 1024},
        "seconds": round(seconds, 1),
        "artifacts": {"model": "model/model.keras", "baseline": "model/baseline.keras" if base else None,
                      "plots": ["reports/plots/train_curves.png", "reports/plots/train_accuracy_vs_snr.png",
                                "reports/plots/train_confusion.png"]},
    }


def markdown(r: dict) -> str:
    kinds = r["data"]["noise_types"]
    snrs = list(r["accuracy"][kinds[0]].keys())
    rows = []
    for name, part in (("model", r["model"]), ("baseline", r["baseline"])):
        if not part:
            continue
        for k in kinds:
            rows.append(f"| {part['arch']} | {k} | " + " | ".join(f"{100 * part['accuracy'][k][s]:.1f}" for s in snrs) + " |")
    lin = r["data"]["linear_spectral_baseline"]
    for k in kinds:
        rows.append(f"| linear (spectrum) | {k} | " + " | ".join(f"{100 * lin[k][s]:.1f}" for s in snrs) + " |")
    cmp = r["comparison"]
    lines = [
        f"# Training report",
        "",
        f"Config `{r['config']}`, seed {r['seed']}, {len(r['classes'])} classes, window {r['data']['window']} "
        f"at {r['data']['fs_hz']} Hz, trained on {', '.join(kinds)} noise at "
        f"{r['data']['train_snr_db_range'][0]}..{r['data']['train_snr_db_range'][1]} dB. Run took {r['seconds']:.0f} s.",
        "",
        "| model | params | MACs | int8 weights | activation peak (est.) | clean acc | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for part in (r["model"], r["baseline"]):
        if part:
            lines.append(f"| {part['arch']} | {part['params']:,} | {part['macs']['total']:,} | "
                         f"{part['int8_weight_bytes'] / 1024:.1f} KB | {part['activation_peak_bytes_est'] / 1024:.1f} KB | "
                         f"{100 * part['accuracy']['clean']:.1f} % | {part['best_epoch']}/{part['epochs_run']} |")
    lines += ["", "## Accuracy (%) by noise type and SNR", "",
              "| model | noise | " + " | ".join(f"{s} dB" for s in snrs) + " |",
              "|---|---|" + "---|" * len(snrs), *rows, ""]
    if cmp["gap_at_lowest_snr_pp"] is not None:
        verdict = "meets" if cmp["meets_target"] else "does NOT meet"
        lines += [f"**{r['model']['arch']} − {r['baseline']['arch']}** (mean over noise types, percentage points): "
                  + ", ".join(f"{s} dB: {v:+.1f}" for s, v in cmp["per_snr_pp"].items())
                  + f". At {cmp['lowest_snr_db']:g} dB this {verdict} the +3 pp target.", ""]
    lines += [f"Linear model on the log spectrum, clean test windows: {100 * lin['clean']:.1f} %.", "",
              "![training curves](plots/train_curves.png)", "",
              "![accuracy vs SNR](plots/train_accuracy_vs_snr.png)", "",
              "![confusion](plots/train_confusion.png)", ""]
    return "\n".join(lines)
