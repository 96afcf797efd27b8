"""Host parity: the same test windows through float Keras, QAT Keras, the TFLite
interpreter and the TFLite Micro host runtime, and how far their outputs are apart.

Metrics on outputs (dequantized int8 probabilities against the float model's
probabilities), named as STM32Cube.AI's validation report names them:
    RMSE  = sqrt(mean((p - q)^2))          MAE = mean(|p - q|)
    L2r   = ||p - q||_2 / ||p||_2          COS = <p, q> / (||p|| ||q||)
computed over all outputs of all windows (flattened), and between two int8 runs the
largest difference in output LSBs and the share of output values that differ.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.int8 import quantize_input
from training import dataset


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def output_metrics(ref: np.ndarray, pred: np.ndarray) -> dict:
    """RMSE, MAE, L2r and COS of `pred` against `ref` (flattened)."""
    r = np.asarray(ref, np.float64).ravel()
    p = np.asarray(pred, np.float64).ravel()
    d = p - r
    nr, np_ = np.linalg.norm(r), np.linalg.norm(p)
    return {
        "rmse": float(np.sqrt(np.mean(d * d))),
        "mae": float(np.mean(np.abs(d))),
        "l2r": float(np.linalg.norm(d) / nr) if nr > 0 else float("inf"),
        "cos": float(np.dot(r, p) / (nr * np_)) if nr > 0 and np_ > 0 else 0.0,
    }


def lsb_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """How two int8 runs of one model differ: max |a - b| in LSB and the share of values."""
    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
    return {"max_lsb": int(d.max(initial=0)), "share_differing": float(np.mean(d > 0)) if d.size else 0.0,
            "windows_differing": float(np.mean(d.reshape(len(d), -1).max(axis=1) > 0)) if d.size else 0.0}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of windows where two outputs have the same top-1 class."""
    return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y), np.asarray(pred)), 1)
    return m


# --- running the int8 models -----------------------------------------------------------------

def _io_params(details: dict) -> tuple[float, int]:
    q = details["quantization_parameters"]
    return float(q["scales"][0]), int(q["zero_points"][0])


def run_tflite(model_bytes: bytes, x: np.ndarray, desc: str = "TFLite", reference: bool = True) -> np.ndarray:
    """int8 outputs [n, ...] of the TFLite interpreter. reference: its reference kernels,
    for the pass compared with TFLM (the optimised builtins drift further from TFLM, up to
    ~60 LSB on the DRSN's outputs); else its optimised builtins, 4-8x faster, for passes that
    only give an accuracy (PTQ, the baseline). Never XNNPACK: it would replace the int8
    graph by its own."""
    import tensorflow as tf
    from tqdm import tqdm
    import warnings
    kind = tf.lite.experimental.OpResolverType
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(
            model_content=model_bytes, num_threads=1,
            experimental_op_resolver_type=kind.BUILTIN_REF if reference else kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    xq = quantize_input(x, *_io_params(inp))
    result = np.empty((len(x), *out["shape"][1:]), np.int8)
    for i in tqdm(range(len(x)), desc=desc, unit="win", dynamic_ncols=True, mininterval=0.5, leave=False):
        it.set_tensor(inp["index"], xq[i:i + 1])
        it.invoke()
        result[i] = it.get_tensor(out["index"])[0]
    return result


def run_tflite_fast(model_bytes: bytes, x: np.ndarray, desc: str = "TFLite") -> np.ndarray:
    """run_tflite on the optimised builtins: for passes that only give an accuracy."""
    return run_tflite(model_bytes, x, desc, reference=False)


def run_tflm(model_bytes: bytes, x: np.ndarray, desc: str = "TFLM") -> np.ndarray:
    """int8 outputs [n, ...] of the TFLite Micro host runtime for float windows x: the
    reference the device must match bit for bit."""
    from firmware_gen import tflm_oracle
    inp = tflm_oracle.model_inputs(model_bytes)[0]
    return tflm_oracle.run(model_bytes, quantize_input(x, inp.scale, inp.zero_point), progress=desc)


class Interpreters:
    """Passes of the int8 interpreters over the sweep x, on a pool of the machine's cores,
    started as soon as their model exists (the caller goes on with its own work, e.g. the
    next model's QAT): both interpreters release the GIL while they run. Each pass is cut
    into one piece per core, so that the longest pass (TFLM) does not finish alone; the
    pieces run in the order given, so give the longest passes first.

        runs = Interpreters(x)
        runs.submit("tflm", run_tflm, model, "TFLM int8")
        ...
        int8 = runs.results()          # {name: int8 outputs [n, ...]}
    """

    def __init__(self, x: np.ndarray):
        import os
        from concurrent.futures import ThreadPoolExecutor
        self.x = x
        self.cores = max(1, os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(max_workers=self.cores)
        self.pieces: dict[str, list] = {}

    def submit(self, name: str, fn, model: bytes, desc: str) -> None:
        bounds = np.linspace(0, len(self.x), self.cores + 1).astype(int)
        cuts = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a] or [(0, 0)]
        self.pieces[name] = [self.pool.submit(fn, model, self.x[a:b],
                                              desc if len(cuts) == 1 else f"{desc} {i + 1}/{len(cuts)}")
                             for i, (a, b) in enumerate(cuts)]

    def results(self) -> dict[str, np.ndarray]:
        try:
            return {name: np.concatenate([f.result() for f in futures])
                    for name, futures in self.pieces.items()}
        finally:
            self.pool.shutdown(cancel_futures=True)

    def abandon(self) -> None:
        """The caller failed: drop the pieces not started (the running ones end by themselves)."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def input_params(model_bytes: bytes) -> tuple[float, int]:
    """(scale, zero point) of the model's input tensor, read from the flatbuffer."""
    from firmware_gen import tflm_oracle
    t = tflm_oracle.model_inputs(model_bytes)[0]
    return float(t.scale), int(t.zero_point)


# --- the test sweep as one array ------------------------------------------------------------

def stack_conditions(test: dict, kinds, snrs, limit: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """All test conditions in one array (so each runtime loops once), the labels repeated,
    and (condition, start, stop) slices. `limit` keeps the first n windows per condition."""
    n = len(test["y"]) if not limit else min(limit, len(test["y"]))
    conds = [("clean", None)] + [(k, float(s)) for k in kinds for s in snrs]
    xs, slices = [], []
    for i, (kind, snr) in enumerate(conds):
        xs.append(test["clean"][:n] if kind == "clean" else test[(kind, snr)][:n])
        slices.append(((kind, snr), i * n, (i + 1) * n))
    return np.concatenate(xs), np.tile(test["y"][:n], len(conds)), slices


def accuracy_by_condition(pred: np.ndarray, y: np.ndarray, slices) -> dict:
    """{'clean': a, noise: {snr_db: a}} from class predictions over the stacked sweep."""
    acc: dict = {}
    for (kind, snr), a, b in slices:
        v = round(float(np.mean(pred[a:b] == y[a:b])), 4)
        if kind == "clean":
            acc["clean"] = v
        else:
            acc.setdefault(kind, {})[dataset.format_snr(snr)] = v
    return acc
