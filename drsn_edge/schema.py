"""What every config key may hold: one entry per key, checked once by `config.load`.

Each stage can then trust its config: a bad value is stopped where it enters (the TOML file
or a --set), with a one-line UserError naming the key, the value and what is allowed, e.g.

    train.epochs = -1 (--set): must be an integer >= 1

Adding a key is adding one line to SCHEMA (and to configs/*.toml); a rule that involves
several keys goes into CROSS_CHECKS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

# Architectures training/models.py builds. Listed here because importing that module loads
# Keras (seconds), and the config is checked before any stage starts.
ARCHS = ("drsn_cw", "drsn_cs", "resnet")
NOISE_KINDS = ("gaussian", "pink", "laplacian")   # training/noise.py KINDS


@dataclass(frozen=True)
class Rule:
    what: str | Callable[[], str]      # what the key may hold, as said in the error message
    test: Callable[[object], bool]     # True when a value is allowed
    explain: Callable[[object], str] | None = None   # a sharper message for a bad value

    @property
    def allowed(self) -> str:
        return self.what() if callable(self.what) else self.what

    def __call__(self, value) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _bounds(lo, hi, lo_open, hi_open) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _within(v, lo, hi, lo_open, hi_open) -> bool:
    return ((lo is None or (v > lo if lo_open else v >= lo))
            and (hi is None or (v < hi if hi_open else v <= hi)))


def integer(lo=None, hi=None) -> Rule:
    b = _bounds(lo, hi, False, False)
    return Rule(f"an integer {b}".strip(), lambda v: _is_int(v) and _within(v, lo, hi, False, False))


def number(lo=None, hi=None, lo_open=False, hi_open=False) -> Rule:
    b = _bounds(lo, hi, lo_open, hi_open)
    return Rule(f"a number {b}".strip(), lambda v: _is_num(v) and _within(v, lo, hi, lo_open, hi_open))


def one_of(*choices) -> Rule:
    return Rule("one of " + ", ".join(repr(c) for c in choices), lambda v: v in choices and isinstance(v, str))


def boolean() -> Rule:
    return Rule("true or false", lambda v: isinstance(v, bool))


def text() -> Rule:
    return Rule("a string", lambda v: isinstance(v, str))


def power_of_two(lo: int) -> Rule:
    return Rule(f"a power of two >= {lo} (e.g. 1024)",
                lambda v: _is_int(v) and v >= lo and v & (v - 1) == 0)


def power_of_two_number(lo: float, hi: float) -> Rule:
    """A power of two (integer or float, e.g. 8 or 0.5) within [lo, hi]."""
    return Rule(f"a power of two from {lo:g} to {hi:g} (e.g. 8)",
                lambda v: _is_num(v) and lo <= v <= hi and math.frexp(v)[0] == 0.5)


def list_of(item: Rule, length: int | None = None, min_len: int = 0, unique: bool = False) -> Rule:
    size = f"a list of {length} items" if length is not None else (
        "a non-empty list" if min_len == 1 else f"a list of at least {min_len} items" if min_len else "a list")
    what = f"{size}, each {item.allowed}" + (", no repeats" if unique else "")

    def test(v):
        return (isinstance(v, list) and (length is None or len(v) == length) and len(v) >= min_len
                and all(item(x) for x in v)
                and (not unique or len(set(map(repr, v))) == len(v)))
    return Rule(what, test)


CELL = Rule("a string or a number", lambda v: isinstance(v, str) or _is_num(v))


def column_values() -> Rule:
    # {load = [3]} or {load = 3}: manifest column -> the values that select a recording.
    return Rule("a table of manifest columns to values, e.g. {load = [3]}",
                lambda v: isinstance(v, dict) and all(
                    isinstance(k, str) and (CELL(x) or (isinstance(x, list) and x and all(CELL(e) for e in x)))
                    for k, x in v.items()))


def table_of(item: Rule) -> Rule:
    return Rule(f"a table of string keys to {item.allowed}",
                lambda v: isinstance(v, dict) and all(isinstance(k, str) and item(x) for k, x in v.items()))


def board() -> Rule:
    # The boards that exist are the folders of boards/ with a board.toml (boards/board.py).
    def known():
        from boards.board import available
        return available()

    # Listed when asked, so a new board folder needs no edit here.
    return Rule(lambda: "a board: one of " + ", ".join(known()) + " (a folder of boards/ with a board.toml)",
                lambda v: isinstance(v, str) and v in known())


_SOCKET = re.compile(r"^socket://(?P<host>[^:/?#\s]+|\[[0-9a-fA-F:.]+\]):(?P<port>\d{1,5})(?:[/?].*)?$")


def port_problem(url: str) -> str | None:
    """What is wrong with a serial port or pyserial URL, or None. A device name is not
    looked up here: it may be plugged in later; Device() says when it is missing."""
    if not isinstance(url, str):
        return "must be a string"
    if url == "" or "://" not in url:
        return None
    scheme = url.split("://", 1)[0]
    from importlib.util import find_spec
    if not re.fullmatch(r"[a-z0-9_]+", scheme) or not any(
            find_spec(f"{package}.protocol_{scheme}") for package in ("serial.urlhandler", "runner.urls")):
        return (f"unknown URL scheme {scheme + '://'!r}; use socket://HOST:PORT, rfc2217://HOST:PORT, "
                f"semihost://127.0.0.1:PORT, loop://, or a device such as /dev/ttyACM0 or COM3")
    if scheme in ("socket", "semihost"):
        m = _SOCKET.match("socket://" + url.split("://", 1)[1])
        if not m or not 0 < int(m["port"]) < 65536:
            return (f"malformed {scheme} URL; write it as {scheme}://HOST:PORT, e.g. "
                    f"{scheme}://127.0.0.1:4321")
        if scheme == "semihost" and m["host"] not in ("127.0.0.1", "localhost", "[::1]"):
            return ("the semihosting link only reaches a board emulated on this machine; write it as "
                    "semihost://127.0.0.1:PORT, or use socket:// or rfc2217:// for another host")
    return None


def serial_port() -> Rule:
    return Rule("\"\" (the board `drsn-edge flash` started), a device such as /dev/ttyACM0 or "
                "COM3, or a pyserial URL such as socket://127.0.0.1:4321",
                lambda v: isinstance(v, str) and port_problem(v) is None, port_problem)


def serial_ports() -> Rule:
    def problem(v):
        if not isinstance(v, list):
            return "must be a list of ports, e.g. [\"socket://127.0.0.1:4321\", \"/dev/ttyACM0\"]"
        for item in v:
            if not isinstance(item, str) or item == "":
                return f"{item!r} is not a port; give each as a non-empty string"
            bad = port_problem(item)
            if bad:
                return f"{item}: {bad}"
        if len(set(v)) != len(v):
            twice = next(x for x in v if v.count(x) > 1)
            return f"{twice} is listed twice; give each board once"
        return None
    return Rule("a list of serial devices or pyserial URLs, one per board (socket://HOST:PORT, "
                "rfc2217://HOST:PORT, /dev/ttyACM0), no repeats",
                lambda v: problem(v) is None, problem)


STRIDE_BLOCK = Rule("a list of [filters, stride] pairs, filters an integer >= 1, stride an integer >= 1",
                    lambda v: isinstance(v, list) and len(v) >= 1 and all(
                        isinstance(b, list) and len(b) == 2 and _is_int(b[0]) and b[0] >= 1
                        and _is_int(b[1]) and b[1] >= 1 for b in v))

# key -> rule. Optional keys (may be absent from a config file) are in OPTIONAL.
SCHEMA: dict[str, Rule] = {
    "seed": integer(0, 2**32 - 1),

    "data.source": one_of("synthetic", "files"),
    "data.fs_hz": number(0, lo_open=True),
    "data.window": power_of_two(64),
    "data.train_per_class": integer(1),
    "data.val_per_class": integer(1),
    "data.noise_types": list_of(one_of(*NOISE_KINDS), min_len=1, unique=True),
    "data.snr_db_range": list_of(number(-100, 100), length=2),
    "data.sensor_full_scale": number(0, 1e12, lo_open=True),
    "data.input_clip_rms": power_of_two_number(1, 64),

    "data.files.paths": list_of(text()),
    "data.files.manifest": text(),
    "data.files.key": text(),
    "data.files.overlap": number(0, 1, hi_open=True),
    "data.files.split": list_of(number(0, 1), length=3),
    "data.files.labels": table_of(text()),
    "data.files.test": column_values(),
    "data.files.val": column_values(),
    "data.files.by_time": boolean(),
    "data.files.resample": boolean(),
    "data.files.leave_one_out": text(),

    "data.synthetic.loads": list_of(number(0, 3), min_len=1, unique=True),
    "data.synthetic.test_loads": list_of(number(0, 3), unique=True),
    "data.synthetic.val_loads": list_of(number(0, 3), unique=True),

    "model.arch": one_of(*ARCHS),
    "model.baseline": one_of("", *ARCHS),
    "model.compare": list_of(one_of(*ARCHS), unique=True),
    "model.stem_filters": integer(1, 1024),
    "model.stem_kernel": integer(1, 1024),
    "model.stem_stride": integer(1, 64),
    "model.blocks": STRIDE_BLOCK,
    "model.kernel": integer(1, 255),
    "model.threshold_units": integer(0, 4096),

    "train.seeds": integer(1, 50),
    "train.workers": integer(0, 64),
    "train.epochs": integer(1),
    "train.batch_size": integer(1),
    "train.learning_rate": number(0, 10, lo_open=True),
    "train.lr_schedule": one_of("cosine", "constant"),
    "train.patience": integer(0),
    "train.weight_decay": number(0),
    "train.augment.speed": number(0, 0.2),
    "train.augment.crop": boolean(),
    "train.augment.tilt_db": number(0, 12),

    "eval.snr_db": list_of(number(-100, 100), min_len=1, unique=True),
    "eval.per_class": integer(1),

    "quantize.qat_epochs": integer(0),
    "quantize.qat_learning_rate": number(0, 10, lo_open=True),
    "quantize.qat_loss": one_of("distill", "labels"),
    "quantize.ema_decay": number(0, 1, lo_open=True, hi_open=True),
    "quantize.representative_windows": integer(1),
    "quantize.parity_windows": integer(0),
    "quantize.max_drop_pp": number(0, 100),
    "quantize.min_agreement": number(0, 1),

    "firmware.board": board(),
    "firmware.backend": one_of("compiled", "tflm"),
    "firmware.model": one_of("qat", "ptq"),
    "firmware.model_path": text(),
    "firmware.selftest_vector": integer(0),
    "firmware.tflm_lib": text(),
    "firmware.tflm_include": text(),
    "firmware.arena_margin": integer(0),
    "firmware.standalone": boolean(),
    "firmware.baud": integer(0, 20_000_000),
    "firmware.optimize": one_of("speed", "size"),
    "firmware.flash_budget": integer(0),
    "firmware.standalone_seconds": number(0, 60, lo_open=True),

    "hil.port": serial_port(),
    "hil.ports": serial_ports(),
    "hil.baud": integer(0, 20_000_000),
    "hil.limit": integer(0),
    "hil.random_vectors": integer(1, 1_000_000),
    "hil.batch": integer(1, 65535),
    "hil.timeout_s": number(0, 3600, lo_open=True),
    "hil.retries": integer(0, 1000),
    "hil.input": one_of("int8", "raw"),
    "hil.emulated_link": one_of("semihosting", "uart"),

    "monitor.hop": integer(0, 65536),
    "monitor.smooth": one_of("majority", "mean"),
    "monitor.smooth_windows": integer(1, 32),
    "monitor.recording": text(),
    "monitor.realtime": boolean(),
}
OPTIONAL = {"data.files.labels"}


def _cross_checks(get) -> list[tuple[str, str]]:
    """(key, problem) for rules between keys; `get(key)` reads a (valid) value."""
    out = []
    lo, hi = get("data.snr_db_range")
    if lo > hi:
        out.append(("data.snr_db_range", f"the low end {lo:g} is above the high end {hi:g}; "
                                         f"write [low, high], e.g. [-5.0, 10.0]"))
    if get("data.files.split")[0] <= 0:
        out.append(("data.files.split", f"{get('data.files.split')}: the train share must be above 0; "
                                        f"e.g. [0.7, 0.15, 0.15], or [1, 0, 0] with data.files.test"))
    loads = get("data.synthetic.loads")
    held_test, held_val = get("data.synthetic.test_loads"), get("data.synthetic.val_loads")
    for key, held in (("data.synthetic.test_loads", held_test), ("data.synthetic.val_loads", held_val)):
        if [v for v in held if v not in loads]:
            out.append((key, f"{held} holds out loads that are not in data.synthetic.loads = {loads}"))
    if set(held_test) & set(held_val):
        out.append(("data.synthetic.val_loads", f"{held_val} shares loads with data.synthetic.test_loads "
                                                f"= {held_test}; a load is for validation or for the test"))
    if not [v for v in loads if v not in held_test and v not in held_val]:
        out.append(("data.synthetic.test_loads", f"{held_test} (with val_loads {held_val}) holds out every "
                                                 f"load of data.synthetic.loads; leave at least one to train on"))
    if get("model.stem_kernel") > get("data.window"):
        out.append(("model.stem_kernel", f"{get('model.stem_kernel')} is longer than one window "
                                         f"(data.window = {get('data.window')}); make it smaller"))
    if get("monitor.hop") > get("data.window"):
        out.append(("monitor.hop", f"{get('monitor.hop')} is longer than one window (data.window = "
                                   f"{get('data.window')}); give 1..{get('data.window')}, or 0 for "
                                   f"half a window"))
    return out


CROSS_CHECKS = _cross_checks
