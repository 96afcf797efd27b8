"""`drsn-edge hil`: validate the board's outputs against the host, over a serial link.

    drsn-edge hil                          # the board `make flash` started
    drsn-edge hil --port /dev/ttyACM0 --baud 115200
    drsn-edge hil --port socket://127.0.0.1:4321 --limit 1000
    drsn-edge hil --vectors my_windows.npz # x (float windows or int8 inputs) [and y]
    drsn-edge hil --debug 17               # vector 17, layer by layer

Steps: find the board (hil.port, else the state `drsn-edge flash` left), refuse it if its
model hash is not the current model's, quantize the test vectors (the test set under every
noise type and SNR of the sweep, window by window in a seeded order, or the user's file),
stream them in batches with several requests in flight (runner/stream.py), and compare
every output with the TFLM host runtime (bit for bit) and the classes with the float and
QAT host models (accuracy parity, from build/reports/quantize_outputs.npz). A run that
stops part-way keeps what it verified in build/reports/hil_resume.npz; the next run with the
same board, model and vectors continues from there.

Reports (runner/report.py): build/reports/hil.json, hil.xml (JUnit), hil.md and plots.
Exit code: 0 when every vector is bit-exact, 1 when any differs; board and link failures
raise (the CLI prints one line and exits 2).
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from drsn_edge.config import section
from drsn_edge.errors import UserError
from runner.link import Device, DeviceError
from runner.stream import Streamer

RESUME_FILE = "hil_resume.npz"
SAVE_EVERY_S = 5.0
# Requests in flight on a link with flow control (QEMU's socket serial). A real UART has
# none, so a board running older firmware would drop bytes that arrive mid-inference.
PIPELINE_DEPTH = 2


@dataclass
class Target:
    """Where the board is, and what `drsn-edge flash` recorded about it (if it started it)."""
    url: str
    baud: int
    board: str | None = None        # the board name expected, if known
    kind: str = "port"              # "emulated", "real" (both from flash state) or "port"
    pid: int | None = None

    def reflash_hint(self, board: str) -> str:
        if self.kind == "emulated":
            return " Run `make flash` to rebuild the firmware and restart the emulated board."
        return (f" Reflash it: `drsn-edge flash --real --board {board} --port {self.url}` "
                f"(or `make flash` for the emulated board).")

    def restart_hint(self) -> str:
        if self.kind == "emulated":
            return " Run `make flash` to restart the emulated board."
        return " Reset or power-cycle the board (reflash it if it keeps failing)."


@dataclass
class Vectors:
    """What is streamed: int8 inputs and, per vector, its label and where it came from."""
    x: np.ndarray                               # int8 [n, *input_shape]
    y: np.ndarray | None                        # int labels [n], or None
    cond: np.ndarray                            # int [n]: index into conditions
    window: np.ndarray | None                   # int [n]: test-set window, None for a file
    conditions: list[tuple[str, float | None]]  # ("clean", None), ("pink", -5.0), ("all", None)
    source: str
    classes: list[str] | None = None
    kind: str = "test set"                      # input_kind: "test set", "file" or "random"
    digest: str = field(default="", init=False)

    def __post_init__(self):
        h = hashlib.sha256(self.x.tobytes())
        h.update(str(self.x.shape).encode())
        self.digest = h.hexdigest()

    def __len__(self) -> int:
        return len(self.x)

    def condition_name(self, i: int) -> str:
        return condition_label(self.conditions[int(self.cond[i])])


def condition_label(cond: tuple[str, float | None]) -> str:
    kind, snr = cond
    return kind if snr is None else f"{kind} {snr:g} dB"


# --- the stage --------------------------------------------------------------------------------

def run(cfg: dict, vectors: str | None = None, debug: int | None = None) -> int:
    h = _settings(cfg)
    from firmware_gen import stage
    try:
        model_file, model = stage.read_model(cfg)
    except UserError as exc:
        hint = _flashed_user_model(cfg)
        if hint:
            raise UserError(f"{exc}; {hint}") from None
        raise
    target = resolve_target(h)
    with connect(target, h) as dev:
        info = check_board(dev, model, model_file, target)
        inp = _model_input(model)
        user = stage.user_model(cfg) is not None
        vs = load_vectors(cfg, vectors, inp, 0 if debug is not None else h["limit"], user=user)
        if debug is not None:
            from runner import debug as layer_debug
            return layer_debug.run(dev, model, vs, debug, info)
        print(f"hil: {len(vs)} vectors from {vs.source} to the {info.board} at {target.url}")
        t0 = time.perf_counter()
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            # The host reference runs while the board works; both take a while.
            ref_job = pool.submit(tflm_outputs, model, vs.x, stop)
            try:
                run_ = stream(dev, vs, h, info, target)
            except BaseException:
                stop.set()
                raise
            ref = ref_job.result()
    from runner import report
    rep = report.build(cfg, target, info, model_file, vs, run_, ref, host_models(vs, ref),
                       time.perf_counter() - t0)
    written = report.write(rep)
    _resume_path().unlink(missing_ok=True)
    print(report.summary_line(rep, written))
    return 0 if rep["bit_exact"] else 1


def _flashed_user_model(cfg: dict) -> str:
    """When no --model was given but `drsn-edge flash` deployed a model of the user's own:
    how to name it."""
    from firmware_gen import stage
    if stage.user_model(cfg) is not None or h_port(cfg):
        return ""
    from boards import flash
    try:
        state = flash.read_state() or {}
    except UserError:
        return ""
    if state.get("model_source") == "user" and state.get("model"):
        return (f"the board `drsn-edge flash` started runs {state['model']}: pass "
                f"--model {state['model']} (make hil MODEL=...)")
    return ""


def h_port(cfg: dict) -> str:
    return str(section(cfg, "hil").get("port") or "")


def _settings(cfg: dict) -> dict:
    # Types and ranges are checked by config.load (drsn_edge/schema.py).
    return section(cfg, "hil")


def resolve_target(h: dict) -> Target:
    """hil.port if given, else the board `drsn-edge flash` left running."""
    if h["port"]:
        url = h["port"]
        # A bare host:port is a common slip for the emulator's socket URL.
        if "://" not in url and ":" in url and not url.upper().startswith("COM") \
                and url.rsplit(":", 1)[1].isdigit() and not url.startswith("/"):
            url = f"socket://{url}"
        return Target(url, h["baud"])
    from boards import flash
    state = flash.running()
    return Target(state["url"], h["baud"], state.get("board"), state.get("kind", "real"),
                  state.get("pid"))


def connect(target: Target, h: dict) -> Device:
    return Device(target.url, baudrate=target.baud, timeout=float(h["timeout_s"]),
                  retries=h["retries"])


def check_board(dev: Device, model: bytes, model_file: Path, target: Target):
    """INFO from the board; refuse a board that runs another model or is not the one
    expected."""
    try:
        info = dev.info()
    except DeviceError as exc:
        raise DeviceError(exc.code, f"{exc} (while asking the board for INFO)") from None
    if target.board and info.board != target.board:
        raise UserError(f"{target.url} answers as a {info.board}, but `drsn-edge flash` "
                        f"recorded a {target.board} there; run `make flash` again")
    digest = hashlib.sha256(model).hexdigest()
    if info.model_hash.hex() != digest:
        raise UserError(f"stale firmware: the {info.board} at {target.url} runs model "
                        f"{info.model_name!r} with hash {info.model_hash.hex()[:12]}…, but "
                        f"the current model {model_file} has hash {digest[:12]}…."
                        f"{target.reflash_hint(info.board)}")
    if info.max_batch == 0:
        raise UserError(f"the {info.board} at {target.url} cannot take one input of "
                        f"{info.input.size} bytes with its {info.output.size}-byte output over "
                        f"the serial protocol ({info.max_payload}-byte frames); HIL streams models "
                        f"whose input fits one frame (PROTO_MAX_PAYLOAD in "
                        f"firmware_gen/harness/protocol.h)")
    if info.model_status != 0:
        raise UserError(f"the model on the {info.board} at {target.url} failed to initialise "
                        f"(status {info.model_status}); check the arena size in the firmware "
                        f"report and reflash")
    return info


# --- vectors ----------------------------------------------------------------------------------

@dataclass
class ModelInput:
    shape: tuple[int, ...]
    scale: float
    zero_point: int


def _model_input(model: bytes) -> ModelInput:
    from firmware_gen import tflm_oracle
    t = tflm_oracle.model_inputs(model)[0]
    return ModelInput(tuple(int(d) for d in t.shape[1:]), float(t.scale), int(t.zero_point))


def load_vectors(cfg: dict, path: str | None, inp: ModelInput, limit: int,
                 user: bool = False) -> Vectors:
    """The user's file; else for the project's model the test sweep, for a model of the
    user's own (no test set of ours fits it) hil.random_vectors seeded random inputs."""
    if path:
        vs = file_vectors(path, inp)
    elif user:
        vs = random_vectors(inp, limit or int(cfg["hil"]["random_vectors"]), int(cfg.get("seed", 0)))
    else:
        vs = sweep_vectors(cfg, inp)
    if limit and limit < len(vs):
        vs = Vectors(vs.x[:limit], None if vs.y is None else vs.y[:limit], vs.cond[:limit],
                     None if vs.window is None else vs.window[:limit], vs.conditions,
                     vs.source, vs.classes, vs.kind)
    if not len(vs):
        raise UserError(f"no vectors to stream from {vs.source}")
    return vs


RANDOM_STREAM = 16    # numpy stream [seed, 16]: the random HIL inputs


def random_vectors(inp: ModelInput, n: int, seed: int) -> Vectors:
    """n seeded random int8 inputs over the whole int8 range (no labels): bit-exactness
    needs no data set. The same seed and n give the same vectors (so a run resumes)."""
    rng = np.random.default_rng([seed, RANDOM_STREAM])
    x = rng.integers(-128, 128, size=(n, *inp.shape), dtype=np.int16).astype(np.int8)
    return Vectors(x, None, np.zeros(n, np.int64), None, [("random", None)],
                   f"seeded random int8 inputs (seed {seed})", None, "random")


def sweep_vectors(cfg: dict, inp: ModelInput) -> Vectors:
    """The test set under every condition, window by window: vector i is window
    order[i // C] under condition i % C, the windows taking the classes in turn (in a
    seeded order within each class), so any prefix (hil.limit) covers every condition and
    every class evenly, and a vector's index does not depend on the limit."""
    from drsn_edge.int8 import quantize_input
    from training import dataset
    path = artifacts.paths()["data"] / "test.npz"
    test = dataset.load_test(path)
    kinds = list(cfg["data"]["noise_types"])
    snrs = [float(s) for s in cfg["eval"]["snr_db"]]
    present = [k for k in test if isinstance(k, tuple)]
    ordered = [(k, s) for k in kinds for s in snrs if (k, s) in test]
    ordered += sorted(set(present) - set(ordered))
    conditions: list[tuple[str, float | None]] = [("clean", None)] + ordered
    n_windows, c = len(test["y"]), len(conditions)
    order = _class_interleaved(test["y"], np.random.default_rng([int(cfg.get("seed", 0)), 5]))
    window = np.repeat(order, c)
    cond = np.tile(np.arange(c), n_windows)
    stacked = [test["clean"]] + [test[k] for k in ordered]
    x = np.empty((n_windows * c, *inp.shape), np.int8)
    for j, xs in enumerate(stacked):
        _check_window_shape(xs.shape[1:], inp, str(path))
        q = quantize_input(xs[order], inp.scale, inp.zero_point)
        x[j::c] = q.reshape(n_windows, *inp.shape)
    return Vectors(x, test["y"][window].astype(np.int64), cond, window, conditions,
                   f"the test sweep ({path})", test["classes"])


def _class_interleaved(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Window indices shuffled, then dealt out one class at a time."""
    shuffled = rng.permutation(len(y))
    labels = y[shuffled]
    rank = np.empty(len(y), np.int64)
    for c in np.unique(labels):
        at = labels == c
        rank[at] = np.arange(at.sum())
    return shuffled[np.lexsort((labels, rank))]


def file_vectors(path: str, inp: ModelInput) -> Vectors:
    """An .npz with x: float windows (quantized here) or int8 inputs; optional y (labels)
    and condition (a name per vector, to group accuracy)."""
    from drsn_edge.int8 import quantize_input
    p = Path(path)
    if not p.is_file():
        raise UserError(f"vector file {p} not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"{p} is not a readable .npz file ({exc}); save it with numpy.savez("
                        f"path, x=windows, y=labels)") from None
    if "x" not in data:
        raise UserError(f"{p} has no array 'x' (it has: {', '.join(data) or 'nothing'}); "
                        f"save the inputs as x=...")
    x = data["x"]
    n = len(x)
    size = int(np.prod(inp.shape))
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != size:
        raise UserError(f"{p}: x has shape {x.shape}, but the model takes {inp.shape} per "
                        f"vector; give x as [n, {', '.join(map(str, inp.shape))}]")
    if x.dtype == np.int8:
        q = x.reshape(n, *inp.shape)
    elif np.issubdtype(x.dtype, np.floating):
        q = quantize_input(x, inp.scale, inp.zero_point).reshape(n, *inp.shape)
    else:
        raise UserError(f"{p}: x is {x.dtype}; give float windows (normalised like the "
                        f"training data) or int8 model inputs")
    y = None
    if "y" in data:
        y = np.asarray(data["y"]).reshape(-1)
        if len(y) != n or not np.issubdtype(y.dtype, np.integer):
            raise UserError(f"{p}: y must hold {n} integer labels, has {y.shape} {y.dtype}")
        y = y.astype(np.int64)
    if "condition" in data:
        names = np.asarray(data["condition"]).astype(str).reshape(-1)
        if len(names) != n:
            raise UserError(f"{p}: condition must name each of the {n} vectors")
        labels, cond = np.unique(names, return_inverse=True)
        conditions = [(str(s), None) for s in labels]
    else:
        cond, conditions = np.zeros(n, np.int64), [("all", None)]
    classes = [str(c) for c in data["classes"]] if "classes" in data else None
    return Vectors(np.ascontiguousarray(q), y, cond, None, conditions, str(p), classes, "file")


def _check_window_shape(shape, inp: ModelInput, where: str) -> None:
    if int(np.prod(shape)) != int(np.prod(inp.shape)):
        raise UserError(f"{where} holds windows of shape {tuple(shape)}, but the model takes "
                        f"{inp.shape}; the data and the model come from different configs "
                        f"(rerun `make train quantize` with one config)")


# --- host references --------------------------------------------------------------------------

def tflm_outputs(model: bytes, x: np.ndarray, stop: threading.Event | None = None) -> np.ndarray:
    """int8 outputs of the TFLM host runtime, the reference the board must match (None if
    `stop` is set before it is done)."""
    from firmware_gen import tflm_oracle
    return tflm_oracle.run(model, x, stop)


def host_models(vs: Vectors, tflm: np.ndarray) -> dict:
    """Float and QAT class scores for the streamed vectors, from the quantize stage's
    outputs (reloading Keras would take longer than the whole check). Only where that file
    covers the vector's window, and only if it was made from this model: its TFLM outputs
    must equal ours on the shared vectors."""
    none = {"float": None, "qat": None, "available": np.zeros(len(vs), bool)}
    path = artifacts.paths()["reports"] / "quantize_outputs.npz"
    if vs.kind == "random":
        return {**none, "note": "seeded random inputs: no labels, so no accuracy; every output "
                                "is compared with TFLM bit for bit"}
    if vs.window is None:
        return {**none, "note": "vectors from a file: no float/QAT host outputs"}
    if not path.is_file():
        return {**none, "note": f"{path} not found (run `make quantize`): no float/QAT accuracy"}
    from training import dataset
    with np.load(path) as z:
        names = [str(c) for c in z["conditions"]]
        per = len(z["y"]) // max(len(names), 1)
        rows = np.full(len(vs), -1)
        for ci, (kind, snr) in enumerate(vs.conditions):
            key = "x_clean" if kind == "clean" else dataset.condition_key(kind, snr)
            if key not in names:
                continue
            sel = (vs.cond == ci) & (vs.window < per)
            rows[sel] = names.index(key) * per + vs.window[sel]
        ok = rows >= 0
        if not ok.any():
            return {**none, "note": f"{path} covers none of the streamed windows"}
        r = rows[ok]
        if not np.array_equal(z["y"][r], vs.y[ok]) or not np.array_equal(
                z["tflm_int8"][r].reshape(len(r), -1), tflm[ok].reshape(len(r), -1)):
            return {**none, "note": f"{path} was made from another model or test set "
                                    f"(rerun `make quantize`): no float/QAT accuracy"}
        scores = {}
        for k in ("float", "qat"):
            s = np.full((len(vs), z[k].shape[1]), np.nan, np.float32)
            s[ok] = z[k][r]
            scores[k] = s
    note = "" if ok.all() else (f"float/QAT accuracy over the {int(ok.sum())} of {len(vs)} "
                                f"vectors whose windows the quantize stage ran "
                                f"(quantize.parity_windows)")
    return {**scores, "available": ok, "note": note}


# --- streaming, with resume ---------------------------------------------------------------------

def _resume_path() -> Path:
    return artifacts.paths()["reports"] / RESUME_FILE


def _identity(info, vs: Vectors) -> str:
    return f"{info.board}|{info.model_hash.hex()}|{vs.digest}"


def _load_resume(identity: str, n: int, out_shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    done = np.zeros(n, bool)
    out = np.zeros((n, *out_shape), np.int8)
    work = np.zeros(n, np.uint64)
    path = _resume_path()
    if path.is_file():
        try:
            with np.load(path) as z:
                if str(z["identity"]) == identity and z["out"].shape == out.shape:
                    done, out, work = z["done"].copy(), z["out"].copy(), z["work"].copy()
        except (OSError, ValueError, KeyError):
            pass  # a damaged resume file only costs the work it held
    return done, out, work


def _save_resume(identity: str, done, out, work) -> None:
    with artifacts.atomic_path(_resume_path()) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, identity=np.array(identity), done=done, out=out, work=work)


def _batches(todo: np.ndarray, size: int):
    """Consecutive runs of the indices still to do, at most `size` long, as ranges."""
    start = 0
    while start < len(todo):
        end = start + 1
        while end < len(todo) and end - start < size and todo[end] == todo[end - 1] + 1:
            end += 1
        yield range(int(todo[start]), int(todo[end - 1]) + 1)
        start = end


def stream(dev: Device, vs: Vectors, h: dict, info, target: Target) -> dict:
    """Every vector through the board once; resumes a stopped run of the same vectors."""
    from tqdm import tqdm
    identity = _identity(info, vs)
    done, out, work = _load_resume(identity, len(vs), info.output.shape)
    resumed = int(done.sum())
    batch = max(1, min(h["batch"], info.max_batch))
    depth = PIPELINE_DEPTH if target.url.startswith("socket://") else 1
    streamer = Streamer(dev, depth, board_hint=target.restart_hint())
    before = dev.board_stats()
    quiet = np.zeros(len(vs), bool)
    todo = np.flatnonzero(~done)
    t0 = time.perf_counter()
    saved = time.monotonic()
    bar = tqdm(total=len(vs), initial=resumed, unit="vec", desc=f"hil {info.board}",
               dynamic_ncols=True, mininterval=0.5, leave=False)
    try:
        for key, o, w in streamer.run((r, vs.x[r.start:r.stop]) for r in _batches(todo, batch)):
            if done[key.start:key.stop].any():
                raise DeviceError("PROTOCOL", f"vectors {key.start}..{key.stop - 1} answered twice")
            out[key.start:key.stop] = o
            work[key.start:key.stop] = w
            done[key.start:key.stop] = True
            bar.update(len(key))
            if time.monotonic() - saved > SAVE_EVERY_S:
                _save_resume(identity, done, out, work)
                saved = time.monotonic()
        for key in streamer.quiet_keys:
            quiet[key.start:key.stop] = True
    except BaseException as exc:
        if done.any():
            _save_resume(identity, done, out, work)
        if isinstance(exc, DeviceError) and done.any():
            raise DeviceError(exc.code, f"{exc} The {int(done.sum())} vectors verified so far "
                              f"are kept in {_resume_path()}; the next `drsn-edge hil` with the "
                              f"same board, model and vectors resumes there.") from None
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    after = dev.board_stats()
    streamed = len(vs) - resumed
    return {
        "out": out, "work": work, "quiet": quiet, "resumed": resumed, "batch": batch,
        "depth": depth, "seconds": seconds, "streamed": streamed,
        "link": vars(dev.stats).copy(),
        "board_counters": {k: after[k] - before[k] for k in after},
    }
