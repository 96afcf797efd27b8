"""`drsn-edge hil`: validate the board's outputs against the host, over a serial link.

    drsn-edge hil                          # the board `make flash` started
    drsn-edge hil --port /dev/ttyACM0 --baud 115200
    drsn-edge hil --port socket://127.0.0.1:4321 --limit 1000
    drsn-edge hil --vectors my_windows.npz # x (float windows or int8 inputs) [and y]
    drsn-edge hil --debug 17               # vector 17, layer by layer
    drsn-edge hil --input raw              # int16 sensor windows, preprocessed on the board

    drsn-edge hil --port socket://127.0.0.1:4321 --port rfc2217://lab:3001   # a farm

Steps: find the boards (hil.port and hil.ports, else every board `drsn-edge flash` left
running), refuse any whose model hash is not the current model's, quantize the test vectors
(the test set under every noise type and SNR of the sweep, window by window in a seeded
order, or the user's file), stream them in batches with several requests in flight
(runner/stream.py), shared out over the boards through one queue (runner/farm.py: a board
that fails hands its batches to the others), and compare
every output with the TFLM host runtime (bit for bit) and the classes with the float and
QAT host models (accuracy parity, from build/reports/quantize_outputs.npz). A run that
stops part-way keeps what it verified in build/reports/hil_resume.npz; the next run with the
same model and vectors (on any boards) continues from there. --debug uses the first board.

With hil.input = "raw" (--input raw) every vector goes as one window of int16 samples (the
test sweep's own sensor samples, test.npz s16_*, from which its int8 inputs were made, so a
raw run checks the very inputs an int8 run sends; float windows of a --vectors file are
turned into int16 with data.sensor_full_scale, drsn_edge.preprocess.to_int16; an .npz may
hold int16 windows as they are): the board preprocesses it (RAW command) and answers
with the int8 input it made and the output. The host computes the expected int8 input with
drsn_edge.preprocess and the expected output with TFLM on that input; both are compared bit
for bit.

Reports (runner/report.py): build/reports/hil.json, hil.xml (JUnit), hil.md and plots.
Exit code: 0 when every vector is bit-exact (and, raw, every preprocessed input), 1 when any
differs; when every board has failed (board and link failures) it raises, and the CLI prints
one line and exits 2.
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
from firmware_gen.build import FRAME_PAYLOAD_MAX
from runner.link import Device, DeviceError

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
    problem: str | None = None      # known unusable before trying (a stopped emulator)

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
    raw: np.ndarray | None = None               # int16 [n, input size] sensor windows (raw mode)
    kind: str = "test set"                      # "test set", "file" or "random"
    digest: str = field(default="", init=False)

    def __post_init__(self):
        h = hashlib.sha256(self.x.tobytes())
        h.update(str(self.x.shape).encode())
        if self.raw is not None:
            h.update(b"raw")
            h.update(self.raw.tobytes())
        self.digest = h.hexdigest()

    @property
    def input_kind(self) -> str:
        """hil.json input_kind: "raw" (int16 windows the board preprocesses), else where the
        int8 inputs came from: "test set", "file" or "random"."""
        return "raw" if self.raw is not None else self.kind

    def __len__(self) -> int:
        return len(self.x)

    def condition_name(self, i: int) -> str:
        return condition_label(self.conditions[int(self.cond[i])])


def condition_label(cond: tuple[str, float | None]) -> str:
    kind, snr = cond
    return kind if snr is None else f"{kind} {snr:g} dB"


# --- the stage --------------------------------------------------------------------------------

def run(cfg: dict, vectors: str | None = None, debug: int | None = None) -> int:
    h = settings(cfg)
    from firmware_gen import stage
    try:
        model_file, model = stage.read_model(cfg)
    except UserError as exc:
        hint = _flashed_user_model(cfg)
        if hint:
            raise UserError(f"{exc}; {hint}") from None
        raise
    user = stage.user_model(cfg) is not None
    targets = resolve_targets(h)
    raw = h["input"] == "raw"
    if raw and user:
        raise UserError("hil.input = \"raw\" sends vibration windows through this project's "
                        "preprocessing; a model of your own (--model) takes int8 inputs: use "
                        "hil.input = \"int8\"")
    if debug is not None:
        target = first_up(targets)
        with connect(target, h) as dev:
            info = check_board(dev, model, model_file, target)
            if raw:
                from runner.link import check_raw_fits
                check_raw_fits(info, target.url)
            vs = load_vectors(cfg, vectors, model_input_of(model), 0, raw, user=user)
            from runner import debug as layer_debug
            return layer_debug.run(dev, model, vs, debug, info)
    from runner import farm
    boards = farm.open_boards(targets, h, model, model_file, connect, check_board)
    try:
        ready = [b for b in boards if b.failed is None]
        if not ready:
            raise UserError(farm.all_failed(boards))
        info = ready[0].info
        if raw:
            from runner.link import check_raw_fits
            check_raw_fits(info, ready[0].url)
        vs = load_vectors(cfg, vectors, model_input_of(model), h["limit"], raw, user=user)
        where = (f"the {info.board} at {ready[0].url}" if len(boards) == 1 else
                 f"{len(ready)} boards ({', '.join(b.url for b in ready)})")
        print(f"hil: {len(vs)} vectors from {vs.source} to {where}")
        for b in boards:
            if b.failed:
                print(f"hil: board {b.url} left out: {b.failed}")
        t0 = time.perf_counter()
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            # The host reference runs while the boards work; both take a while.
            ref_job = pool.submit(reference, model, vs.x, stop)
            try:
                run_ = stream(boards, vs, h, info)
            except BaseException:
                stop.set()
                raise
            ref, ref_info = ref_job.result()
    finally:
        for b in boards:
            if b.dev is not None:
                b.dev.close()
    from runner import report
    target = ready[0].target if len(boards) == 1 else Target(
        ", ".join(b.url for b in boards), h["baud"], kind="farm")
    rep = report.build(cfg, target, info, model_file, vs, run_, ref, host_models(vs, ref),
                       time.perf_counter() - t0)
    rep["reference"] = ref_info
    written = report.write(rep)
    _resume_path().unlink(missing_ok=True)
    print(report.summary_line(rep, written))
    return 0 if rep["bit_exact"] and rep.get("preprocessing_bit_exact", True) else 1


def _flashed_user_model(cfg: dict) -> str:
    """When no --model was given but `drsn-edge flash` deployed a model of the user's own:
    how to name it."""
    from firmware_gen import stage
    if stage.user_model(cfg) is not None or h_port(cfg) or section(cfg, "hil").get("ports"):
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


def settings(cfg: dict) -> dict:
    """[hil] with hil.baud resolved. Types and ranges are checked by config.load
    (drsn_edge/schema.py)."""
    h = dict(section(cfg, "hil"))
    if not h["baud"]:
        h["baud"] = image_baud(cfg)
    return h


def image_baud(cfg: dict) -> int:
    """The baud rate the board's image was built for (hil.baud = 0): the one `drsn-edge flash`
    recorded, else firmware.baud, else the board's own (uart.baud in its board.toml)."""
    from boards import flash
    try:
        state = flash.read_state() or {}
    except UserError:
        state = {}
    if state.get("baud"):
        return int(state["baud"])
    fw = section(cfg, "firmware")
    if fw.get("baud"):
        return int(fw["baud"])
    import boards
    return boards.load(fw["board"]).uart_baud


def resolve_targets(h: dict) -> list[Target]:
    """hil.port and hil.ports if given, else every board `drsn-edge flash` left running."""
    urls = ([h["port"]] if h["port"] else []) + list(h["ports"])
    if urls:
        targets, seen = [], set()
        for url in urls:
            url = _normalize_url(url)
            if url in seen:
                raise UserError(f"{url} is given twice (hil.port and hil.ports, or --port); "
                                f"give each board once")
            seen.add(url)
            targets.append(Target(url, h["baud"]))
        return targets
    from boards import flash
    state = flash.running()
    kind = state.get("kind", "real")
    targets = []
    for entry in flash.boards_of(state):
        url = entry["url"]
        if kind == "emulated" and h["emulated_link"] == "semihosting":
            # The pipes, not the emulated UART: a whole request per call (protocol_semihost.py).
            url = url.replace("socket://", "semihost://", 1)
        problem = None
        if kind == "emulated" and not flash.pid_alive(entry.get("pid")):
            problem = (f"the emulated {state.get('board')} at {url} started by `make "
                       f"flash` is no longer running (pid {entry.get('pid')})")
        targets.append(Target(url, h["baud"], state.get("board"), kind, entry.get("pid"), problem))
    return targets


def resolve_target(h: dict) -> Target:
    """The one board of a single-board command (`monitor`, `hil --debug`): the first given
    or started that is still up."""
    return first_up(resolve_targets(h))


def first_up(targets: list[Target]) -> Target:
    for t in targets:
        if not t.problem:
            return t
    raise UserError(targets[0].problem)


def _normalize_url(url: str) -> str:
    # A bare host:port is a common slip for the emulator's socket URL.
    if "://" not in url and ":" in url and not url.upper().startswith("COM") \
            and url.rsplit(":", 1)[1].isdigit() and not url.startswith("/"):
        return f"socket://{url}"
    return url


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
                        f"whose input fits one frame: `drsn-edge firmware` sizes the frames for "
                        f"inputs up to {FRAME_PAYLOAD_MAX - 64:,} bytes, so rebuild the firmware "
                        f"with this project's harness, or use a smaller input")
    if info.model_status != 0:
        raise UserError(f"the model on the {info.board} at {target.url} failed to initialise "
                        f"(status {info.model_status}); check the arena size in the firmware "
                        f"report and reflash")
    return info


# --- vectors ----------------------------------------------------------------------------------

@dataclass
class ModelInput:
    shape: tuple[int, ...]
    scale: float          # the int8 quantization of the input (for a float32 input: the one
    zero_point: int       # its first QUANTIZE applies)
    dtype: str = "int8"   # or "float32": the model takes float32 and quantizes it itself; or
    #                       "uint8" (its own quantization, read by a first QUANTIZE to int8)


def model_input_of(model: bytes) -> ModelInput:
    """The model's input as the link carries it: shape without the batch, quantization and
    element type (used by hil, the self-test vector and the benchmark alike)."""
    from firmware_gen import codegen, tflm_oracle
    t = tflm_oracle.model_inputs(model)[0]
    shape = tuple(int(d) for d in t.shape[1:])
    if t.type == "FLOAT32":
        q = codegen.float_input_quantization(tflm_oracle.read_operators(model), t)["quantized_by"]
        return ModelInput(shape, q["scale"], q["zero_point"], "float32")
    return ModelInput(shape, float(t.scale), int(t.zero_point), "uint8" if t.type == "UINT8" else "int8")


def load_vectors(cfg: dict, path: str | None, inp: ModelInput, limit: int,
                 raw: bool = False, user: bool = False) -> Vectors:
    """The user's file; else for the project's model the test sweep, for a model of the
    user's own (no test set of ours fits it) hil.random_vectors seeded random inputs."""
    full_scale = float(cfg["data"]["sensor_full_scale"]) if raw else None
    if path:
        vs = file_vectors(path, inp, full_scale)
    elif user:
        vs = random_vectors(inp, limit or int(cfg["hil"]["random_vectors"]), int(cfg.get("seed", 0)))
    else:
        vs = sweep_vectors(cfg, inp, full_scale)
    if limit and limit < len(vs):
        vs = Vectors(vs.x[:limit], None if vs.y is None else vs.y[:limit], vs.cond[:limit],
                     None if vs.window is None else vs.window[:limit], vs.conditions,
                     vs.source, vs.classes, None if vs.raw is None else vs.raw[:limit], vs.kind)
    if not len(vs):
        raise UserError(f"no vectors to stream from {vs.source}")
    return vs


RANDOM_STREAM = 16    # numpy stream [seed, 16]: the random HIL inputs


def random_inputs(rng: np.random.Generator, inp: ModelInput, n: int) -> np.ndarray:
    """n random inputs of the model's shape: int8 (uint8) over the whole range, or for a
    float32 input floats over what its int8 quantization represents and a little beyond
    (drsn_edge.int8.random_float_inputs)."""
    if inp.dtype == "float32":
        from drsn_edge.int8 import random_float_inputs
        return random_float_inputs(rng, (n, *inp.shape), inp.scale, inp.zero_point)
    if inp.dtype == "uint8":
        return rng.integers(0, 256, size=(n, *inp.shape), dtype=np.int16).astype(np.uint8)
    return rng.integers(-128, 128, size=(n, *inp.shape), dtype=np.int16).astype(np.int8)


def random_vectors(inp: ModelInput, n: int, seed: int) -> Vectors:
    """n seeded random int8 inputs over the whole int8 range (no labels): bit-exactness
    needs no data set. The same seed and n give the same vectors (so a run resumes). For a
    float32 input: seeded random floats over what the int8 input represents and an eighth of
    that span beyond each end (drsn_edge.int8.random_float_inputs)."""
    x = random_inputs(np.random.default_rng([seed, RANDOM_STREAM]), inp, n)
    return Vectors(x, None, np.zeros(n, np.int64), None, [("random", None)],
                   f"seeded random {inp.dtype} inputs (seed {seed})", None, None, "random")


def sweep_vectors(cfg: dict, inp: ModelInput, full_scale: float | None = None) -> Vectors:
    """The test set under every condition, window by window: vector i is window
    order[i // C] under condition i % C, the windows taking the classes in turn (in a
    seeded order within each class), so any prefix (hil.limit) covers every condition and
    every class evenly, and a vector's index does not depend on the limit.

    With full_scale (raw mode) each window is sent as the int16 samples it was preprocessed
    from (test.npz s16_*; a test.npz without them: the float window made int16 at that
    sensor scale), and the int8 inputs are what drsn_edge.preprocess makes of them: for the
    model's input contract, the same bytes as the int8 mode's."""
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
    # Raw mode sends the int16 samples the model inputs were preprocessed from (test.npz
    # s16_*), so raw and int8 runs see the same int8 inputs; float windows otherwise.
    samples = test.get("s16", {})
    sources = [samples.get(k) for k in ["clean"] + ordered]
    x = np.empty((n_windows * c, *inp.shape), np.int8)
    size = int(np.prod(inp.shape))
    raw = None if full_scale is None else np.empty((n_windows * c, size), np.int16)
    for j, xs in enumerate(stacked):
        _check_window_shape(xs.shape[1:], inp, str(path))
        if raw is None:
            q = quantize_input(xs[order], inp.scale, inp.zero_point)
        else:
            src = xs if sources[j] is None or sources[j].shape[-1] != size else sources[j]
            raw[j::c], q = _raw_inputs(src[order].reshape(n_windows, size), inp, full_scale)
        x[j::c] = q.reshape(n_windows, *inp.shape)
    source = f"the test sweep ({path})" + ("" if raw is None else
                                            f", as int16 at full scale {full_scale:g}")
    return Vectors(x, test["y"][window].astype(np.int64), cond, window, conditions,
                   source, test["classes"], raw)


def _raw_inputs(windows: np.ndarray, inp: ModelInput, full_scale: float | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(int16 samples [n, size], the int8 inputs the preprocessing makes of them): float
    windows go through to_int16 at full_scale, int16 windows as they are."""
    from drsn_edge import preprocess
    samples = windows if windows.dtype == np.int16 else preprocess.to_int16(windows, full_scale)
    try:
        q = preprocess.preprocess(samples, inp.scale, inp.zero_point)
    except ValueError as exc:
        raise UserError(f"raw input cannot be preprocessed for this model: {exc}; use "
                        f"hil.input = \"int8\"") from None
    return samples, q


def _class_interleaved(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Window indices shuffled, then dealt out one class at a time."""
    shuffled = rng.permutation(len(y))
    labels = y[shuffled]
    rank = np.empty(len(y), np.int64)
    for c in np.unique(labels):
        at = labels == c
        rank[at] = np.arange(at.sum())
    return shuffled[np.lexsort((labels, rank))]


def file_vectors(path: str, inp: ModelInput, full_scale: float | None = None) -> Vectors:
    """An .npz with x: float windows (quantized here) or int8 inputs; optional y (labels)
    and condition (a name per vector, to group accuracy). With full_scale (raw mode): x
    holds int16 sensor windows, or float windows in physical units (made int16 at that
    scale)."""
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
    raw = None
    if full_scale is not None:
        if x.dtype != np.int16 and not np.issubdtype(x.dtype, np.floating):
            raise UserError(f"{p}: x is {x.dtype}, but raw input (hil.input = \"raw\") takes "
                            f"int16 sensor windows or float windows in physical units; give "
                            f"one of those, or use hil.input = \"int8\" for int8 inputs")
        raw, q = _raw_inputs(x.reshape(n, size), inp, full_scale)
        q = q.reshape(n, *inp.shape)
    elif inp.dtype == "float32":
        # The model quantizes its float32 input itself: the floats go to the board as they are.
        if not np.issubdtype(x.dtype, np.floating):
            raise UserError(f"{p}: x is {x.dtype}, but the model takes float32 inputs (its first "
                            f"op quantizes them); give x as floats")
        q = np.asarray(x, np.float32).reshape(n, *inp.shape)
    elif inp.dtype == "uint8":
        # uint8 model inputs as they are; floats quantized with the input's uint8
        # quantization (the int8 one with the zero point 128 lower, then the bytes as uint8)
        if x.dtype == np.uint8:
            q = x.reshape(n, *inp.shape)
        elif np.issubdtype(x.dtype, np.floating):
            q = (quantize_input(x, inp.scale, inp.zero_point - 128).reshape(n, *inp.shape)
                 .astype(np.int16) + 128).astype(np.uint8)
        else:
            raise UserError(f"{p}: x is {x.dtype}, but the model takes uint8 inputs; give uint8 "
                            f"model inputs or float windows")
    elif x.dtype == np.int8:
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
    return Vectors(np.ascontiguousarray(q), y, cond, None, conditions, str(p), classes, raw, "file")


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


# Reused TFLM answers that are recomputed here all the same, as a check of the cache.
SPOT_CHECKS = 32


def reference(model: bytes, q: np.ndarray, stop: threading.Event | None = None):
    """TFLM's outputs for the int8 inputs q, the reference the boards must match, and how they
    were obtained. The quantize stage ran TFLM over the test sweep already; its answers are
    taken for every input whose bytes it ran with these model bytes (quantize_outputs.npz
    records the model's SHA-256 and a digest of each input), after recomputing a spread of
    SPOT_CHECKS of them; every other input, and all of them if a spot check differs, runs
    through TFLM here. (None, info) if `stop` is set first."""
    from firmware_gen import tflm_oracle
    q = np.asarray(q)
    rows = np.full(len(q), -1)
    cached = _quantize_reference(model)
    if cached is not None:
        index = {int(d): i for i, d in enumerate(cached["tflm_input_digest"])}
        rows = np.array([index.get(int(d), -1) for d in tflm_oracle.digests(q)])
    reused = np.flatnonzero(rows >= 0)
    check = reused[np.unique(np.linspace(0, len(reused) - 1, min(SPOT_CHECKS, len(reused)))
                             .astype(int))] if len(reused) else reused
    run_here = rows < 0
    run_here[check] = True
    info = {"reused_from_quantize": int(len(reused) - len(check)), "run_here": int(run_here.sum()),
            "spot_checked": int(len(check)), "spot_check_failed": False}
    computed = tflm_oracle.run(model, q[run_here], stop) if run_here.any() else None
    if run_here.any() and computed is None:
        return None, info                                  # stopped
    if not len(reused):
        return computed, info
    out = np.empty((len(q), *cached["tflm_int8"].shape[1:]), np.int8)
    out[reused] = cached["tflm_int8"][rows[reused]]
    if computed is not None:
        checked = computed[np.isin(np.flatnonzero(run_here), check)]
        if not np.array_equal(out[check], checked.reshape(out[check].shape)):
            # The cache does not hold what TFLM gives: trust nothing from it.
            info.update(reused_from_quantize=0, run_here=len(q), spot_check_failed=True)
            return tflm_oracle.run(model, q, stop), info
        out[run_here] = computed.reshape(out[run_here].shape)
    return out, info


def _quantize_reference(model: bytes) -> dict | None:
    path = artifacts.paths()["reports"] / "quantize_outputs.npz"
    try:
        with np.load(path) as z:
            if "tflm_model_sha256" not in z.files or \
                    str(z["tflm_model_sha256"]) != hashlib.sha256(model).hexdigest():
                return None
            return {"tflm_int8": z["tflm_int8"], "tflm_input_digest": z["tflm_input_digest"]}
    except (OSError, ValueError, KeyError):
        return None


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
    if vs.raw is not None:
        return {**none, "note": "raw input: the float/QAT host outputs of the quantize stage "
                                "were made from host-quantized windows, not these inputs"}
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
    # Not the board: every board must answer exactly as TFLM does, so a farm of any size
    # (or another board) can resume what an earlier run verified.
    return f"{info.model_hash.hex()}|{vs.digest}"


def _load_resume(identity: str, fresh: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of `fresh` (done, out, work and, raw, pre_in and pre_work) as a stopped
    run of the same identity left them, else `fresh` itself."""
    path = _resume_path()
    if path.is_file():
        try:
            with np.load(path) as z:
                if str(z["identity"]) == identity and all(
                        z[k].shape == v.shape and z[k].dtype == v.dtype for k, v in fresh.items()):
                    return {k: z[k].copy() for k in fresh}
        except (OSError, ValueError, KeyError):
            pass  # a damaged resume file only costs the work it held
    return fresh


def _save_resume(identity: str, arrays: dict[str, np.ndarray]) -> None:
    with artifacts.atomic_path(_resume_path()) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, identity=np.array(identity), **arrays)


def _batches(todo: np.ndarray, size: int):
    """Consecutive runs of the indices still to do, at most `size` long, as ranges."""
    start = 0
    while start < len(todo):
        end = start + 1
        while end < len(todo) and end - start < size and todo[end] == todo[end - 1] + 1:
            end += 1
        yield range(int(todo[start]), int(todo[end - 1]) + 1)
        start = end


def stream(boards: list, vs: Vectors, h: dict, info) -> dict:
    """Every vector through the ready boards once (a shared queue of batches); resumes a
    stopped run of the same vectors. Raises when every board has failed."""
    from tqdm import tqdm
    from runner import farm
    ready = [b for b in boards if b.failed is None]
    identity = _identity(info, vs)
    raw = vs.raw is not None
    n = len(vs)
    fresh = {"done": np.zeros(n, bool), "out": np.zeros((n, *info.output.shape), info.output.dtype),
             "work": np.zeros(n, np.uint64)}
    if raw:
        fresh.update(pre_in=np.zeros((n, info.input.size), np.int8),
                     pre_work=np.zeros(n, np.uint64))
    arrays = _load_resume(identity, fresh)
    done, out, work = arrays["done"], arrays["out"], arrays["work"]
    resumed = int(done.sum())
    # A RAW request carries one window (its int16 samples fill most of a frame).
    batch = 1 if raw else max(1, min([h["batch"]] + [b.info.max_batch for b in ready]))
    for b in ready:
        b.depth = PIPELINE_DEPTH if b.url.startswith(("socket://", "semihost://")) else 1
    bar = tqdm(total=len(vs), initial=resumed, unit="vec", dynamic_ncols=True, mininterval=0.5,
               leave=False, desc=f"hil {info.board}" if len(boards) == 1 else
               f"hil {len(ready)} boards")
    lock = threading.Lock()

    def save():
        _save_resume(identity, arrays)

    def progress(n):
        with lock:
            bar.update(n)

    todo = np.flatnonzero(~done)
    f = farm.Farm(boards, vs.raw if raw else vs.x, _batches(todo, batch), done, out, work,
                  progress, save, SAVE_EVERY_S,
                  raw={"pre_in": arrays["pre_in"], "pre_work": arrays["pre_work"]} if raw else None)
    t0 = time.perf_counter()
    try:
        f.run()
    except BaseException:
        if done.any():
            save()
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    if not done.all():
        message = farm.all_failed(boards)
        if done.any():
            save()
            message += (f" The {int(done.sum())} vectors verified so far are kept in "
                        f"{_resume_path()}; the next `drsn-edge hil` with the same model "
                        f"and vectors resumes there.")
        failed = [b for b in ready if b.failed]
        raise DeviceError(failed[0].code if failed else "FAILED", message)
    quiet = np.zeros(len(vs), bool)
    for b in ready:
        for key in b.quiet_keys:
            quiet[key.start:key.stop] = True
    link: dict = {}
    counters: dict = {}
    for b in ready:
        for k, v in b.link.items():
            link[k] = link.get(k, 0) + v
        for k, v in (b.counters or {}).items():
            counters[k] = counters.get(k, 0) + v
    streamed = len(vs) - resumed
    return {
        "out": out, "work": work, "quiet": quiet, "resumed": resumed, "batch": batch,
        "pre_in": arrays.get("pre_in"), "pre_work": arrays.get("pre_work"),
        "depth": max(b.depth for b in ready), "seconds": seconds, "streamed": streamed,
        "link": link, "board_counters": counters, "who": f.who,
        "duplicated": f.duplicated, "lost": int(np.sum(~done)),
        "boards": [_board_entry(b, info) for b in boards],
    }


def _board_entry(b, info) -> dict:
    said = b.info or b.seen
    return {
        "url": b.url,
        "board": said.board if said else None,
        "kind": b.target.kind,
        "model_hash": said.model_hash.hex() if said else None,
        "vectors": b.vectors,
        "seconds": round(b.seconds, 2),
        "vectors_per_second": round(b.vectors / b.seconds, 2) if b.seconds > 0 else None,
        "requeued": b.requeued,
        "depth": b.depth,
        "link": b.link or None,
        "board_counters": b.counters,
        "failed": b.failed,
    }
