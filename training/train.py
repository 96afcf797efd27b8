"""`drsn-edge train`: data → DRSN and the same-size ResNet baseline → accuracy vs SNR.

Reads top to bottom like a Keras example: data, model, compile, fit, evaluate, report.
Writes build/model/model.keras (the chosen arch), build/model/baseline.keras,
build/reports/train.json + train.md and the plots under build/reports/plots/.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError
from training import dataset


def linear_baseline(data: dict, cfg: dict) -> dict:
    """How hard the task is: a linear classifier on the log spectrum, trained on the same
    noisy training windows the networks see, scored on every test condition."""
    from training.signals import spectral_baseline
    x, y = dataset.training_feed(data, cfg, int(cfg["seed"])).epoch(0)
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

    def __init__(self, name: str, epochs: int, position: int = 0):
        from tqdm import tqdm
        self.bar = tqdm(total=epochs, desc=f"train {name:8s}", unit="epoch", dynamic_ncols=True,
                        mininterval=0, position=position, leave=True)

    def update(self, logs: dict) -> None:
        self.bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['accuracy']:.3f}",
                             val_acc=f"{logs['val_accuracy']:.3f}", lr=f"{logs['lr']:.1e}")
        self.bar.update(1)

    def close(self, note: str = "") -> None:
        if note:
            self.bar.set_description_str(f"{self.bar.desc} ({note})")
        self.bar.close()


def fit(model, data: dict, cfg: dict, name: str, seed: int, bar_position: int = 0) -> dict:
    """Train with fresh noise each epoch, a cosine learning-rate schedule and early stopping
    on validation accuracy (keeping the best epoch's weights). Returns the history."""
    import keras
    t = cfg["train"]
    x_clean, y = data["train"]
    x_val, y_val = data["val"]
    steps = -(-len(x_clean) // t["batch_size"])
    if t["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(t["learning_rate"], decay_steps=t["epochs"] * steps,
                                                    alpha=0.02)
    else:  # "constant" (config.load allows nothing else)
        lr = t["learning_rate"]
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=t["weight_decay"],
                                 name="adamw")
    # A whole epoch per call into the compiled graph: the same steps in the same order (the
    # weights come out bit-identical), without Python between steps (about a tenth of an
    # epoch's CPU for these small models).
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps)

    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "lr": []}
    best, best_epoch, best_weights, waited = -1.0, 0, None, 0
    bar = EpochBar(name, t["epochs"], bar_position)
    for epoch in range(t["epochs"]):
        x, yy = _feed_epoch(data, cfg, seed, epoch)
        h = model.fit(x, yy, batch_size=t["batch_size"], epochs=1, shuffle=False, verbose=0)
        val_loss, val_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
        logs = {"loss": h.history["loss"][0], "accuracy": h.history["accuracy"][0],
                "val_loss": val_loss, "val_accuracy": val_acc,
                "lr": float(keras.ops.convert_to_numpy(opt.learning_rate))}
        for k, v in logs.items():
            history[k].append(float(v))
        bar.update(logs)
        if not data.get("val_selects", True):
            # Validation is cut from the training recordings: it may show the curves but
            # not choose an epoch. The schedule runs to its end and the last weights stay.
            best, best_epoch, best_weights = val_acc, epoch, model.get_weights()
        elif val_acc > best:
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


_FEED: dict = {}


def _feed_epoch(data: dict, cfg: dict, seed: int, epoch: int):
    """Epoch `epoch` of the training feed for `seed`, made once per process: every arch
    of a seed trains on the same batches (worker_plan gives them to one worker). Only the
    latest seed's epochs are kept."""
    key = (seed, id(data), json.dumps([cfg["data"], cfg["train"]], sort_keys=True, default=str))
    if _FEED.get("key") != key:
        _FEED.clear()
        _FEED.update(key=key, feed=dataset.training_feed(data, cfg, seed), epochs={})
    epochs = _FEED["epochs"]
    if epoch not in epochs:
        epochs[epoch] = _FEED["feed"].epoch(epoch)
    return epochs[epoch]


def predict_sweep(model, test: dict, cfg: dict) -> dict:
    """Predicted class of every test window under every condition: {"clean" | (noise, snr): pred}."""
    out = {"clean": _predict(model, test["x_clean"])}
    for kind in cfg["data"]["noise_types"]:
        for s in cfg["eval"]["snr_db"]:
            out[(kind, s)] = _predict(model, test[dataset.condition_key(kind, s)])
    return out


def sweep_accuracy(preds: dict, y: np.ndarray, cfg: dict, mask=None) -> dict:
    """Accuracy per noise type and SNR ({noise: {snr_db: acc}}) plus clean, over `mask`."""
    mask = np.ones(len(y), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)

    def acc(pred):
        return round(float(np.mean(pred[mask] == y[mask])), 4)
    out = {"clean": acc(preds["clean"])}
    for kind in cfg["data"]["noise_types"]:
        out[kind] = {dataset.format_snr(s): acc(preds[(kind, s)]) for s in cfg["eval"]["snr_db"]}
    return out


def _predict(model, x) -> np.ndarray:
    return np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1)


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
    loo = cfg["data"].get("files", {}).get("leave_one_out", "")
    if loo:
        return run_leave_one_out(cfg, loo)
    from training import plots
    t_start = time.perf_counter()
    t_start_wall = time.time()
    p = artifacts.paths()
    seeds = training_seeds(cfg)
    roles = model_roles(cfg)
    jobs = [(role, arch, i, run_seed) for i, run_seed in enumerate(seeds) for role, arch in roles]
    # The worker processes start now (importing TensorFlow takes seconds) while this one
    # makes the data.
    workers = Workers(cfg, jobs)

    # --- data ------------------------------------------------------------------------------
    try:
        data = dataset.prepare(cfg)
    except BaseException:
        workers.close()
        raise
    classes = data["classes"]
    print(f"data: {len(classes)} classes, {len(data['train'][1])} train / {len(data['val'][1])} val / "
          f"{len(data['test']['y'])} test windows per condition ({data['seconds']:.1f} s)")

    # --- models, over seeds ----------------------------------------------------------------
    # Every arch is trained once per seed; of the deployed model's and the baseline's seeds,
    # the best on validation is saved (never chosen on the test set). The spread over seeds
    # is reported next to every mean.
    test = data["test"]
    parts = condition_masks(test)
    t_jobs = time.time()
    linear = {}

    def meanwhile():   # in this process while the workers train
        linear.update(linear_baseline(data, cfg))
        low = dataset.format_snr(cfg['eval']['snr_db'][0])
        print(f"linear spectral baseline: clean {linear['clean']:.3f}, mean at {low} dB "
              f"{np.mean([linear[k][low] for k in cfg['data']['noise_types']]):.3f}")

    done = workers.run(cfg, jobs, len(seeds), meanwhile)
    timing = job_timing([out["timing"] for out in done], t_jobs, time.time(), t_start_wall)
    per_seed, candidates = {arch: [] for _, arch in roles}, {}
    for (role, arch, i, _), out in zip(jobs, done):
        per_seed[arch].append(out["per_part"])
        if out["result"] is not None:
            candidates.setdefault(role, []).append(out["result"])
    results = {role: deploy_seed(role, runs, data["val_selects"]) for role, runs in candidates.items()}
    by_condition = summarize(per_seed, parts, test)

    # --- report ----------------------------------------------------------------------------
    report = build_report(cfg, classes, results, linear, time.perf_counter() - t_start,
                          seeds=seeds, by_condition=by_condition, split=data["split"],
                          val_selects=data["val_selects"])
    report["timing"] = timing
    plots.training_curves({r["arch"]: r["history"] for r in results.values()},
                          p["plots"] / "train_curves.png")
    plots.accuracy_vs_snr({r["arch"]: r["accuracy"] for r in results.values()},
                          p["plots"] / "train_accuracy_vs_snr.png", linear=linear)
    plots.accuracy_by_condition(by_condition, p["plots"] / "train_conditions.png")
    plots.confusion_matrix(np.array(results["model"]["confusion_lowest_snr"]), classes,
                           p["plots"] / "train_confusion.png",
                           title=f"{results['model']['arch']} at {cfg['eval']['snr_db'][0]} dB "
                                 f"({cfg['data']['noise_types'][0]} noise)")
    artifacts.write_json(p["reports"] / "train.json", report)
    artifacts.write_text(p["reports"] / "train.md", markdown(report))
    print(f"train: wrote {p['model'] / 'model.keras'}, {p['reports'] / 'train.json'} "
          f"({report['seconds']:.0f} s)")
    for line in condition_lines(report):
        print(line)
    return report


def run_leave_one_out(cfg: dict, column: str) -> dict:
    """Leave-one-group-out over a manifest column: for each of its values, train on the
    recordings of the other values and test on that one (data.files.test = {column = [v]}),
    each fold a full `train` run in build/loo/<column>=<v>/; then one summary report,
    build/reports/train_loo.{json,md}, with the unseen-condition accuracy of every arch per
    held-out group. The folds are evaluations: the deployed model comes from a plain run."""
    import copy
    import os
    from training import recordings
    files = cfg["data"]["files"]
    if cfg["data"]["source"] != "files":
        raise UserError(f"data.files.leave_one_out = {column!r} needs data.source = 'files' "
                        f"(the synthetic rig holds out data.synthetic.test_loads instead)")
    if not files.get("manifest"):
        raise UserError(f"data.files.leave_one_out = {column!r}: groups come from a manifest column, "
                        f"but data.files.manifest is empty")
    rows = recordings.read_conditions(files["manifest"]).values()
    if any(column not in r for r in rows):
        raise UserError(f"data.files.leave_one_out = {column!r}: {files['manifest']} has no such "
                        f"column (columns: {', '.join(sorted(next(iter(rows))))})")
    values = sorted({r[column] for r in rows}, key=lambda v: (len(v), v))
    if len(values) < 2:
        raise UserError(f"data.files.leave_one_out = {column!r}: every recording has {column} = "
                        f"{values[0]}; leaving one group out needs at least two")
    top = artifacts.build_dir()
    folds = {}
    for v in values:
        fold = copy.deepcopy(cfg)
        fold["data"]["files"]["test"] = {column: [v]}
        fold["data"]["files"]["leave_one_out"] = ""
        print(f"leave-one-out: fold {column}={v} (train on the other {len(values) - 1} groups)")
        os.environ["DRSN_EDGE_BUILD"] = str(top / "loo" / f"{column}={v}")
        try:
            folds[f"{column}={v}"] = run(fold)
        finally:
            os.environ["DRSN_EDGE_BUILD"] = str(top)
    summary = {"stage": "train", "leave_one_out": column, "seeds": next(iter(folds.values()))["seeds"],
               "folds": {g: {"unseen": r["by_condition"]["unseen"], "comparison": r["comparison"],
                             "report": f"loo/{g}/reports/train.json"} for g, r in folds.items()}}
    p = artifacts.paths()
    artifacts.write_json(p["reports"] / "train_loo.json", summary)
    artifacts.write_text(p["reports"] / "train_loo.md", loo_markdown(summary, cfg["data"]["noise_types"]))
    print(f"leave-one-out: wrote {p['reports'] / 'train_loo.json'}")
    return summary


def loo_markdown(summary: dict, kinds) -> str:
    lines = [f"# Leave one {summary['leave_one_out']} out", "",
             f"Each row: trained without that group, tested on it; mean ± sd over "
             f"{len(summary['seeds'])} seeds. Noisy columns: mean over {', '.join(kinds)}.", ""]
    for group, fold in summary["folds"].items():
        snrs = sorted(next(iter(fold["unseen"].values()))["mean"][kinds[0]], key=float)
        lines += [f"## held out: {group}", "", "| model | clean | " + " | ".join(f"{s} dB" for s in snrs) + " |",
                  "|---|---|" + "---|" * len(snrs)]
        for arch, st in fold["unseen"].items():
            m, sd = st["mean"], st["sd"]
            lines.append(f"| {arch} | {100 * m['clean']:.1f} ± {100 * sd['clean']:.1f} | " + " | ".join(
                f"{100 * _noise_mean(m, kinds, s):.1f} ± {100 * _noise_mean(sd, kinds, s):.1f}" for s in snrs) + " |")
        lines.append("")
    return "\n".join(lines)


def train_one(cfg: dict, data: dict, role: str, arch: str, index: int, run_seed: int,
              n_seeds: int, bar_position: int = 0) -> dict:
    """Train one (arch, seed), score it on every part of the sweep; the model and baseline
    runs are saved per seed (their report entry is "result"), compare runs only scored."""
    from training import models
    test = data["test"]
    seed_everything(run_seed)
    model = models.build(arch, cfg["data"]["window"], len(data["classes"]), cfg["model"])
    t0 = time.perf_counter()
    label = arch if n_seeds == 1 else f"{arch} s{index + 1}"
    history = fit(model, data, cfg, label, run_seed, bar_position)
    seconds = time.perf_counter() - t0
    preds = predict_sweep(model, test, cfg)
    out = {"per_part": {part: sweep_accuracy(preds, test["y"], cfg, mask)
                        for part, mask in condition_masks(test).items()}, "result": None}
    if role != "compare":
        # Every seed of the saved roles is kept until the seeds are compared on validation
        # (pick_seed); the chosen one becomes model/<role>.keras.
        digest = save_model(model, seed_model_path(role, index))
        lowest = (cfg["data"]["noise_types"][0], cfg["eval"]["snr_db"][0])
        out["result"] = {
            **describe(model),
            "accuracy": sweep_accuracy(preds, test["y"], cfg),
            "history": history,
            "train_seconds": round(seconds, 1),
            "weights_sha256": digest,
            "seed": run_seed,
            "best_val_accuracy": round(max(history["val_accuracy"]), 4),
            "confusion_lowest_snr": confusion_of(preds[lowest], test["y"], len(data["classes"])).tolist(),
        }
    return out


def seed_model_path(role: str, index: int) -> Path:
    return artifacts.paths()["model"] / "seeds" / f"{role}_s{index + 1}.keras"


def pick_seed(val_accuracy: list[float], val_selects: bool) -> int:
    """Which seed's model to deploy: the best on validation (held-out data, never the test
    set; the first seed wins a tie). When validation is cut from the training recordings it
    may not choose, and the first seed is deployed."""
    if not val_selects:
        return 0
    return int(np.argmax(val_accuracy))


def deploy_seed(role: str, runs: list[dict], val_selects: bool) -> dict:
    """Copy the chosen seed's model to model/<role>.keras, drop the others, and say why."""
    i = pick_seed([r["best_val_accuracy"] for r in runs], val_selects)
    dest = artifacts.paths()["model"] / f"{role}.keras"
    artifacts.write_bytes(dest, seed_model_path(role, i).read_bytes())
    for j in range(len(runs)):
        seed_model_path(role, j).unlink()
    try:
        seed_model_path(role, 0).parent.rmdir()
    except OSError:
        pass  # another role's seeds are still there
    rule = ("best validation accuracy of the seeds" if val_selects and len(runs) > 1
            else "the first seed (validation is cut from the training recordings: it may not choose)"
            if len(runs) > 1 else "the only seed")
    return runs[i] | {"seed_index": i + 1, "seed_choice": rule,
                      "val_accuracy_by_seed": [r["best_val_accuracy"] for r in runs]}


class Workers:
    """The worker processes that train the jobs, one TensorFlow thread each: a small model
    keeps one core busy better than two threads do. Always in worker processes, even one:
    the float sums of one thread come out the same whatever the number of workers, so a
    job's model depends only on its seed and the config. Started (and TensorFlow imported
    in them) when made; run() ends them, close() too."""

    def __init__(self, cfg: dict, jobs: list):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        self.plan = worker_plan(jobs, len(os.sched_getaffinity(0)), int(cfg["train"].get("workers", 0)))
        ctx = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        self.pools = [ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init,
                                          initargs=(str(artifacts.build_dir()),)) for _ in self.plan]
        for pool in self.pools:
            pool.submit(int)   # starts the process now

    def run(self, cfg: dict, jobs: list, n_seeds: int, meanwhile=None) -> list[dict]:
        """Every (role, arch, seed index, seed) job's result, in order of `jobs`;
        meanwhile(): run here once the jobs are handed out."""
        try:
            futures = {k: pool.submit(_worker_job, cfg, *jobs[k], n_seeds, w)
                       for w, (pool, mine) in enumerate(zip(self.pools, self.plan)) for k in mine}
            if meanwhile:
                meanwhile()
            return [futures[k].result() for k in range(len(jobs))]
        finally:
            self.close()

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(cancel_futures=True)


def worker_plan(jobs: list, cpus: int, workers: int = 0) -> list[list[int]]:
    """Which jobs (indices into `jobs`) each worker process runs, in order.

    The archs of one seed go to one worker: they train on the same batches (the feed
    depends on the seed alone), which that worker then makes once (`_feed_epoch`).
    workers = 0 chooses: one per CPU when the seeds share out evenly over the CPUs, else one
    per seed up to two per CPU (3 seeds on 2 CPUs: 3 workers): with 2 workers the one given
    two seeds would train three models alone at the end, while 3 processes on 2 CPUs keep
    both busy to the end. With fewer seeds than CPUs the jobs themselves are shared out,
    the slower shrinkage models first."""
    seeds = list(dict.fromkeys(j[3] for j in jobs))
    if not workers:
        n = len(seeds)
        workers = n if cpus <= n <= 2 * cpus and n % cpus else cpus
    workers = max(1, min(workers, len(jobs)))
    if len(seeds) >= workers:
        owner = {seed: i % workers for i, seed in enumerate(seeds)}
        plan = [[k for k, j in enumerate(jobs) if owner[j[3]] == w] for w in range(workers)]
    else:
        order = sorted(range(len(jobs)), key=lambda k: (jobs[k][1] == "resnet", k))
        plan = [order[w::workers] for w in range(workers)]
    return [p for p in plan if p]


_WORKER_DATA: dict = {}


def _worker_init(build: str) -> None:
    os.environ["DRSN_EDGE_BUILD"] = build
    from drsn_edge.cli import quiet_tensorflow
    quiet_tensorflow()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from training import models  # noqa: F401  (Keras, and the custom layers, before the first job)


def _worker_job(cfg, role, arch, index, run_seed, n_seeds, position) -> dict:
    start = time.time()
    if not _WORKER_DATA:
        _WORKER_DATA.update(dataset.load_prepared(cfg))
    out = train_one(cfg, _WORKER_DATA, role, arch, index, run_seed, n_seeds, position)
    out["timing"] = {"arch": arch, "seed": run_seed, "worker": position,
                     "start": start, "end": time.time()}
    return out


def _timing_note(t: dict | None) -> str:
    if not t:
        return ""
    return (f": {t['before_jobs_seconds']:.0f} s data, then {len(t['jobs'])} training jobs in "
            f"{t['jobs_seconds']:.0f} s on {t['workers']} workers, busy {100 * t['worker_busy_share']:.0f} % "
            f"of that time")


def job_timing(jobs: list[dict], start: float, end: float, stage_start: float) -> dict:
    """Where the stage's time went: before the jobs (the data), the jobs in
    their worker processes (each from its start to its end, model load and scoring
    included), and how busy the workers were while the jobs ran (1.0: never idle)."""
    wall = end - start
    workers = {j["worker"] for j in jobs}
    busy = sum(j["end"] - j["start"] for j in jobs)
    return {"before_jobs_seconds": round(start - stage_start, 1),
            "jobs_seconds": round(wall, 1),
            "workers": len(workers),
            "worker_busy_share": round(busy / (len(workers) * wall), 3) if wall > 0 else None,
            "jobs": [{"arch": j["arch"], "seed": j["seed"], "worker": j["worker"],
                      "start_s": round(j["start"] - start, 1), "seconds": round(j["end"] - j["start"], 1)}
                     for j in jobs]}


def training_seeds(cfg: dict) -> list[int]:
    """train.seeds runs: the config's seed, then seed + 1, ..."""
    return [int(cfg["seed"]) + i for i in range(int(cfg["train"].get("seeds", 1)))]


def model_roles(cfg: dict) -> list[tuple[str, str]]:
    """(role, arch): the deployed model, the baseline, then model.compare archs (evaluated
    over the seeds, not saved). Each arch once."""
    m = cfg["model"]
    roles = [("model", m["arch"])]
    if m.get("baseline"):
        roles.append(("baseline", m["baseline"]))
    for arch in m.get("compare", []):
        if arch not in [a for _, a in roles]:
            roles.append(("compare", arch))
    return roles


def condition_masks(test: dict) -> dict:
    """Which test windows each report part covers: all, and seen / unseen operating
    conditions where the sweep has them."""
    unseen = np.asarray(test["unseen"], dtype=bool)
    parts = {"all": np.ones(len(unseen), dtype=bool)}
    if (~unseen).any():
        parts["seen"] = ~unseen
    if unseen.any():
        parts["unseen"] = unseen
    return parts


def _acc_stat(values: list[dict], fn) -> dict:
    first = values[0]
    out = {"clean": round(float(fn([v["clean"] for v in values])), 4)}
    for kind in first:
        if kind != "clean":
            out[kind] = {s: round(float(fn([v[kind][s] for v in values])), 4) for s in first[kind]}
    return out


def summarize(per_seed: dict, parts: dict, test: dict) -> dict:
    """{"seen" | "unseen" | "all": {arch: {"mean", "sd"}}, "unseen_groups", "seen_groups"}:
    mean and sample standard deviation over the seeds (sd 0 with one seed)."""
    out = {}
    for part in parts:
        out[part] = {}
        for arch, runs in per_seed.items():
            values = [r[part] for r in runs]
            sd = (lambda v: np.std(v, ddof=1)) if len(values) > 1 else (lambda v: 0.0)
            out[part][arch] = {"mean": _acc_stat(values, np.mean), "sd": _acc_stat(values, sd),
                               "seeds": values}
    unseen = np.asarray(test["unseen"], dtype=bool)
    groups = np.asarray(test["group"]).astype(str)
    out["unseen_groups"] = sorted(set(groups[unseen].tolist()))
    out["seen_groups"] = sorted(set(groups[~unseen].tolist()))
    return out


def confusion_of(pred: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def build_report(cfg, classes, results, linear, seconds, seeds=None, by_condition=None,
                 split=None, val_selects=True) -> dict:
    from drsn_edge.preprocess import contract_report, input_contract
    model = results["model"]
    base = results.get("baseline")
    kinds = cfg["data"]["noise_types"]
    seeds = seeds or [int(cfg["seed"])]
    by_condition = by_condition or {}
    comparison = compare(by_condition, model["arch"], base["arch"] if base else None, kinds,
                         cfg["eval"]["snr_db"])
    return {
        "stage": "train",
        "config": cfg.get("_source"),
        "seed": cfg["seed"],
        "classes": classes,
        "data": {"source": cfg["data"]["source"], "window": cfg["data"]["window"],
                 "split": split, "validation_selects": val_selects,
                 "fs_hz": cfg["data"]["fs_hz"], "noise_types": kinds,
                 "train_snr_db_range": cfg["data"]["snr_db_range"],
                 "linear_spectral_baseline": linear,
                 "input_contract": contract_report(input_contract(cfg))},
        "model": {k: v for k, v in model.items() if k != "history"} | {"best_epoch": model["history"]["best_epoch"],
                                                                        "epochs_run": model["history"]["epochs_run"]},
        "params": model["params"],
        "macs": model["macs"]["total"],
        "accuracy": model["accuracy"],
        "baseline": ({k: v for k, v in base.items() if k != "history"} |
                     {"best_epoch": base["history"]["best_epoch"], "epochs_run": base["history"]["epochs_run"]})
        if base else None,
        "comparison": comparison,
        "seeds": seeds,
        "by_condition": by_condition,
        "targets": condition_targets(by_condition, model["arch"], base["arch"] if base else None, kinds,
                                     cfg["eval"]["snr_db"]),
        "budget": {"int8_weight_bytes_max": 64 * 1024, "arena_bytes_max": 32 * 1024,
                   "fits": model["int8_weight_bytes"] <= 64 * 1024
                   and model["activation_peak_bytes_est"] <= 32 * 1024},
        "seconds": round(seconds, 1),
        "artifacts": {"model": "model/model.keras", "baseline": "model/baseline.keras" if base else None,
                      "plots": ["reports/plots/train_curves.png", "reports/plots/train_accuracy_vs_snr.png",
                                "reports/plots/train_conditions.png", "reports/plots/train_confusion.png"]},
    }


def _noise_mean(acc: dict, kinds, snr: str) -> float:
    return float(np.mean([acc[k][snr] for k in kinds]))


def compare(by_condition: dict, arch: str, base: str | None, kinds, snrs) -> dict:
    """DRSN minus baseline in percentage points per SNR (mean over noise types), on the
    unseen condition where there is one, over the seeds: the mean gap and its spread (the
    sample sd of the per-seed gaps). A gap is `claimed` only where it exceeds that spread."""
    part = "unseen" if "unseen" in by_condition else "all"
    lowest = dataset.format_snr(min(snrs))
    out = {"on": part, "lowest_snr_db": float(lowest), "gap_at_lowest_snr_pp": None,
           "per_snr_pp": {}, "sd_pp": {}, "claimed": {}}
    if not base or part not in by_condition:
        return out
    a, b = by_condition[part][arch]["seeds"], by_condition[part][base]["seeds"]
    for s in snrs:
        key = dataset.format_snr(s)
        gaps = [100 * (_noise_mean(x, kinds, key) - _noise_mean(y, kinds, key)) for x, y in zip(a, b)]
        mean = float(np.mean(gaps))
        sd = float(np.std(gaps, ddof=1)) if len(gaps) > 1 else None
        out["per_snr_pp"][key] = round(mean, 2)
        out["sd_pp"][key] = None if sd is None else round(sd, 2)
        out["claimed"][key] = sd is not None and abs(mean) > sd
    out["gap_at_lowest_snr_pp"] = out["per_snr_pp"][lowest]
    return out


def condition_targets(by_condition: dict, arch: str, base: str | None, kinds, snrs) -> list[dict]:
    """The issue's targets on the unseen condition, with the measured values: met or missed."""
    if "unseen" not in by_condition or not base:
        return []
    lowest = dataset.format_snr(min(snrs))
    unseen, seen = by_condition["unseen"], by_condition.get("seen")
    gap = 100 * (_noise_mean(unseen[arch]["mean"], kinds, lowest)
                 - _noise_mean(unseen[base]["mean"], kinds, lowest))
    out = [{"name": f"unseen: {arch} - {base} at {lowest} dB (mean over noise types and seeds)",
            "value_pp": round(gap, 2), "wanted_pp": 3.0, "met": gap >= 3.0}]
    if seen:
        drop = 100 * (seen[arch]["mean"]["clean"] - unseen[arch]["mean"]["clean"])
        out.append({"name": f"{arch} clean: seen - unseen condition", "value_pp": round(drop, 2),
                    "wanted_pp": 3.0, "met": drop <= 3.0})
    return out


def condition_lines(r: dict) -> list[str]:
    bc, kinds = r["by_condition"], r["data"]["noise_types"]
    lowest = dataset.format_snr(r["comparison"]["lowest_snr_db"])
    lines = []
    for part in ("seen", "unseen"):
        if part not in bc:
            continue
        groups = ", ".join(bc[f"{part}_groups"])
        cells = []
        for arch, st in ((a, v) for a, v in bc[part].items()):
            m, sd = st["mean"], st["sd"]
            cells.append(f"{arch} clean {100 * m['clean']:.1f}±{100 * sd['clean']:.1f} %, "
                         f"{lowest} dB {100 * _noise_mean(m, kinds, lowest):.1f}±"
                         f"{100 * _noise_mean(sd, kinds, lowest):.1f} %")
        lines.append(f"{part} ({groups}), {len(r['seeds'])} seeds: " + "; ".join(cells))
    for t in r["targets"]:
        lines.append(f"target {t['name']}: {t['value_pp']:+.1f} pp ({'met' if t['met'] else 'MISSED'})")
    return lines


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
    lines = [
        f"# Training report",
        "",
        f"Config `{r['config']}`, seed {r['seed']}, {len(r['classes'])} classes, window {r['data']['window']} "
        f"at {r['data']['fs_hz']} Hz, trained on {', '.join(kinds)} noise at "
        f"{r['data']['train_snr_db_range'][0]}..{r['data']['train_snr_db_range'][1]} dB. Run took {r['seconds']:.0f} s{_timing_note(r.get('timing'))}.",
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
              "The saved models on every test window, seen and unseen conditions together. Saved: "
              + "; ".join(f"{part['arch']} seed {part.get('seed_index', 1)} of {len(r['seeds'])} "
                          f"({part.get('seed_choice', 'the only seed')}; validation "
                          + ", ".join(f"{100 * v:.1f}" for v in part.get('val_accuracy_by_seed', []))
                          + " %)" for part in (r["model"], r["baseline"]) if part) + ".", "",
              "| model | noise | " + " | ".join(f"{s} dB" for s in snrs) + " |",
              "|---|---|" + "---|" * len(snrs), *rows, ""]
    lines += condition_markdown(r)
    lines += [f"Linear model on the log spectrum, clean test windows: {100 * lin['clean']:.1f} %.", "",
              "![training curves](plots/train_curves.png)", "",
              "![accuracy vs SNR](plots/train_accuracy_vs_snr.png)", "",
              "![accuracy by condition](plots/train_conditions.png)", "",
              "![confusion](plots/train_confusion.png)", ""]
    return "\n".join(lines)


def condition_markdown(r: dict) -> list[str]:
    bc, kinds = r["by_condition"], r["data"]["noise_types"]
    if "unseen" not in bc and "seen" not in bc:
        return []
    snrs = sorted(next(iter(bc["all"].values()))["mean"][kinds[0]], key=float)
    out = ["## Seen vs unseen operating conditions", "",
           f"Mean ± sd over {len(r['seeds'])} seeds ({', '.join(map(str, r['seeds']))}); seen: "
           f"{', '.join(bc.get('seen_groups', [])) or '-'}; unseen (never in training or "
           f"validation): {', '.join(bc.get('unseen_groups', [])) or '-'}. Noisy columns: mean over "
           f"{', '.join(kinds)}.", "",
           "| condition | model | clean | " + " | ".join(f"{s} dB" for s in snrs) + " |",
           "|---|---|---|" + "---|" * len(snrs)]
    for part in ("seen", "unseen"):
        for arch, st in bc.get(part, {}).items():
            m, sd = st["mean"], st["sd"]
            cells = [f"{100 * _noise_mean(m, kinds, s):.1f} ± {100 * _noise_mean(sd, kinds, s):.1f}"
                     for s in snrs]
            out.append(f"| {part} | {arch} | {100 * m['clean']:.1f} ± {100 * sd['clean']:.1f} | "
                       + " | ".join(cells) + " |")
    cmp = r["comparison"]
    if cmp["per_snr_pp"]:
        def gap(snr, value):
            sd = cmp["sd_pp"][snr]
            spread = "one seed" if sd is None else f"sd {sd:.1f}"
            verdict = "" if cmp["claimed"][snr] else ", within the seed spread: no claim"
            return f"{snr} dB {value:+.1f} ({spread}{verdict})"
        out += ["", f"**{r['model']['arch']} − {r['baseline']['arch']}** on the {cmp['on']} "
                    f"condition(s), mean over seeds, pp: "
                + "; ".join(gap(s, v) for s, v in cmp["per_snr_pp"].items())]
    if r["targets"]:
        out += ["", "| target | measured | wanted | |", "|---|---|---|---|"]
        out += [f"| {t['name']} | {t['value_pp']:+.1f} pp | {'>=' if 'seen - unseen' not in t['name'] else '<='} "
                f"{t['wanted_pp']:g} pp | {'met' if t['met'] else '**missed**'} |" for t in r["targets"]]
    return out + [""]
