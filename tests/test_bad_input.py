"""Every bad input a user can give ends as one line on stderr, exit status 2, nothing written.

Each case runs the real CLI in a subprocess (so "no traceback" is what a user sees) against
a build directory holding a few earlier artifacts, and checks that none of them changed and
that nothing new (a temporary file, a half-written artifact) appeared. No case trains: the
valid model some cases need is a tiny int8 .tflite built here with the flatbuffer schema.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

SMOKE = str(ROOT / "configs" / "smoke.toml")
WINDOW = 512          # data.window of the smoke config
MODEL = "model/model_int8.tflite"


# --- a tiny model: input [1, window, 1] -> RESHAPE -> FULLY_CONNECTED -> [1, 10] ---------------

def tiny_tflite(window: int = WINDOW, dtype: str = "int8", op: str = "FULLY_CONNECTED") -> bytes:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    act = s.TensorType.INT8 if dtype == "int8" else s.TensorType.FLOAT32
    wdt, bdt = (np.int8, np.int32) if dtype == "int8" else (np.float32, np.float32)

    def buffer(data: bytes = b""):
        b = s.BufferT()
        b.data = list(data) if data else None
        return b

    def tensor(name, shape, type_, buf, scale=None):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), type_, buf
        if scale is not None and dtype == "int8":
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [scale], [0]
            t.quantization = q
        return t

    def opcode(name):
        c = s.OperatorCodeT()
        c.builtinCode = getattr(s.BuiltinOperator, name)
        c.deprecatedBuiltinCode = min(c.builtinCode, 127)
        return c

    def operator(code, ins, outs):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, ins, outs
        return o

    model = s.ModelT()
    model.version = 3
    model.operatorCodes = [opcode("RESHAPE"), opcode(op)]
    model.buffers = [buffer(), buffer(np.array([1, window], np.int32).tobytes()),
                     buffer(np.ones((10, window), wdt).tobytes()), buffer(np.zeros(10, bdt).tobytes())]
    g = s.SubGraphT()
    g.tensors = [tensor("input", [1, window, 1], act, 0, 0.05),
                 tensor("shape", [2], s.TensorType.INT32, 1),
                 tensor("flat", [1, window], act, 0, 0.05),
                 tensor("weights", [10, window], act, 2, 0.01),
                 tensor("bias", [10], s.TensorType.INT32 if dtype == "int8" else act, 3, 0.0005),
                 tensor("output", [1, 10], act, 0, 0.1)]
    g.inputs, g.outputs = [0], [5]
    g.operators = [operator(0, [0, 1], [2]), operator(1, [2, 3, 4], [5])]
    model.subgraphs = [g]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def good_model() -> bytes:
    data = tiny_tflite()
    from quantize.audit import audit
    audit(data, "tiny", verify=False)      # the fixture itself must be a valid int8 model
    return data


# --- how each case is set up ---------------------------------------------------------------

def put(rel: str, data: bytes | None = None, *, text: str | None = None, **arrays):
    """Set-up step: write a file at build/<rel> (or rec/<rel> for rel starting "rec/")."""
    def step(build: Path, rec: Path, model: bytes):
        dest = (rec / rel[4:]) if rel.startswith("rec/") else build / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if arrays:
            np.savez(dest, **arrays)
        elif text is not None:
            dest.write_text(text)
        else:
            dest.write_bytes(model if data is None else data(model) if callable(data) else data)
    return step


def model(data=None):
    return put(MODEL, data)


def mat(rel: str, **arrays):
    def step(build, rec, model):
        import scipy.io
        rec.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(rec / rel, arrays)
    return step


def files(*extra: str) -> list[str]:
    """--set options for data.source = "files" reading the rec/ folder (filled in by run())."""
    return ["data.source='files'", "data.files.paths=['{rec}']", *extra]


SIG = np.sin(np.arange(4000) / 7.0)            # a float recording long enough for windows

CASES = [
    # (id, stage, --set items or extra CLI words, set-up steps, text the message must contain)
    # config values
    ("epochs-negative", "data", ["train.epochs=-1"], [], "train.epochs = -1"),
    ("epochs-float", "data", ["train.epochs=2.5"], [], "train.epochs"),
    ("batch-zero", "data", ["train.batch_size=0"], [], "train.batch_size = 0"),
    ("lr-zero", "data", ["train.learning_rate=0"], [], "train.learning_rate"),
    ("lr-schedule", "data", ["train.lr_schedule='step'"], [], "train.lr_schedule = 'step'"),
    ("patience-negative", "data", ["train.patience=-3"], [], "train.patience"),
    ("window-not-pow2", "data", ["data.window=1000"], [], "data.window = 1000"),
    ("window-tiny", "data", ["data.window=16"], [], "data.window"),
    ("train-per-class", "data", ["data.train_per_class=0"], [], "data.train_per_class"),
    ("fs-negative", "data", ["data.fs_hz=-12000"], [], "data.fs_hz"),
    ("source-enum", "data", ["data.source='disk'"], [], "data.source = 'disk'"),
    ("noise-unknown", "data", ["data.noise_types=['brown']"], [], "data.noise_types"),
    ("noise-empty", "data", ["data.noise_types=[]"], [], "data.noise_types"),
    ("snr-reversed", "data", ["data.snr_db_range=[10.0, -5.0]"], [], "data.snr_db_range"),
    ("snr-length", "data", ["data.snr_db_range=[0.0]"], [], "data.snr_db_range"),
    ("overlap-one", "data", ["data.files.overlap=1.0"], [], "data.files.overlap = 1.0"),
    ("split-length", "data", ["data.files.split=[0.5, 0.5]"], [], "data.files.split"),
    ("split-train-zero", "data", ["data.files.split=[0.0, 0.5, 0.5]"], [], "data.files.split"),
    ("split-negative", "data", ["data.files.split=[1.0, -0.5, 0.5]"], [], "data.files.split"),
    ("test-not-table", "data", ["data.files.test=3"], [], "data.files.test"),
    ("test-no-manifest", "data", files("data.files.test={{load=[3]}}", "data.files.split=[1,0,0]"),
     [put("rec/normal_1.npz", signal=SIG)], "data.files.manifest"),
    ("by-time-not-bool", "data", ["data.files.by_time=1"], [], "data.files.by_time"),
    ("loads-out-of-range", "data", ["data.synthetic.loads=[0, 5]"], [], "data.synthetic.loads"),
    ("test-loads-all", "data", ["data.synthetic.loads=[0, 1]", "data.synthetic.test_loads=[0, 1]"], [],
     "data.synthetic.test_loads"),
    ("test-loads-unknown", "data", ["data.synthetic.test_loads=[2.5]"], [], "data.synthetic.test_loads"),
    ("seeds-zero", "train", ["train.seeds=0"], [], "train.seeds"),
    ("compare-enum", "train", ["model.compare=['lstm']"], [], "model.compare"),
    ("augment-speed", "train", ["train.augment.speed=0.5"], [], "train.augment.speed"),
    ("augment-tilt", "train", ["train.augment.tilt_db=-1"], [], "train.augment.tilt_db"),
    ("eval-snr-empty", "data", ["eval.snr_db=[]"], [], "eval.snr_db"),
    ("eval-per-class", "data", ["eval.per_class=0"], [], "eval.per_class"),
    ("arch-enum", "train", ["model.arch='vgg'"], [], "model.arch = 'vgg'"),
    ("baseline-enum", "train", ["model.baseline='cnn'"], [], "model.baseline"),
    ("blocks-shape", "train", ["model.blocks=[[8]]"], [], "model.blocks"),
    ("blocks-stride-zero", "train", ["model.blocks=[[8, 0]]"], [], "model.blocks"),
    ("kernel-zero", "train", ["model.kernel=0"], [], "model.kernel"),
    ("stem-kernel-long", "train", ["model.stem_kernel=1000"], [], "model.stem_kernel"),
    ("qat-epochs", "quantize", ["quantize.qat_epochs=-1"], [], "quantize.qat_epochs"),
    ("ema-decay", "quantize", ["quantize.ema_decay=1.5"], [], "quantize.ema_decay"),
    ("max-drop", "quantize", ["quantize.max_drop_pp=-1"], [], "quantize.max_drop_pp"),
    ("min-agreement", "quantize", ["quantize.min_agreement=2"], [], "quantize.min_agreement"),
    ("qat-loss", "quantize", ["quantize.qat_loss='mse'"], [], "quantize.qat_loss"),
    ("board-unknown", "firmware", ["--board", "esp32"], [], "firmware.board = 'esp32'"),
    ("backend-enum", "firmware", ["firmware.backend='cmsis'"], [], "firmware.backend"),
    ("fw-model-enum", "firmware", ["firmware.model='fp32'"], [], "firmware.model"),
    ("selftest-negative", "firmware", ["firmware.selftest_vector=-1"], [], "firmware.selftest_vector"),
    ("hil-limit", "hil", ["--limit", "-5"], [], "hil.limit"),
    ("hil-batch", "hil", ["hil.batch=0"], [], "hil.batch"),
    ("hil-timeout", "hil", ["hil.timeout_s=0"], [], "hil.timeout_s"),
    ("hil-retries", "hil", ["hil.retries=-1"], [], "hil.retries"),
    ("hil-baud", "hil", ["--baud", "-1"], [], "hil.baud"),
    ("firmware-baud-negative", "flash", ["--baud", "-5"], [], "firmware.baud = -5"),
    ("firmware-baud-unreachable", "firmware", ["--board", "lm3s6965evb", "--baud", "921600"], [],
     "921,600 baud cannot be set on lm3s6965evb"),
    ("firmware-baud-off", "firmware", ["--board", "netduinoplus2", "--baud", "1200000"], [],
     "1,200,000 baud cannot be set on netduinoplus2: 2.6 % off"),
    ("optimize-enum", "firmware", ["firmware.optimize='fast'"], [], "firmware.optimize = 'fast'"),
    ("flash-budget-negative", "benchmark", ["firmware.flash_budget=-1"], [], "firmware.flash_budget = -1"),
    ("hil-input-flag", "hil", ["--input", "float"], [], "hil.input = 'float'"),
    ("hil-input-set", "hil", ["hil.input='int16'"], [], "hil.input = 'int16'"),
    ("monitor-hop-long", "monitor", ["monitor.hop=1024"], [], "monitor.hop = 1024"),
    ("monitor-smooth-enum", "monitor", ["monitor.smooth='median'"], [], "monitor.smooth = 'median'"),
    ("monitor-smooth-windows", "monitor", ["monitor.smooth_windows=0"], [], "monitor.smooth_windows = 0"),
    ("monitor-realtime-text", "monitor", ["monitor.realtime='yes'"], [], "monitor.realtime"),
    ("monitor-recording-missing", "monitor", ["--recording", "{rec}/nope.npz"], [model()], "nope.npz"),
    ("monitor-recording-short", "monitor", ["--recording", "{rec}/short.npz"],
     [model(), put("rec/short.npz", signal=SIG[:300])], "fewer than one window of 512"),
    ("monitor-port-refused", "monitor", ["--port", "socket://127.0.0.1:{free_port}"], [model()],
     "socket://127.0.0.1:"),
    ("sensor-full-scale-zero", "hil", ["data.sensor_full_scale=0"], [], "data.sensor_full_scale = 0"),
    ("sensor-full-scale-text", "data", ["data.sensor_full_scale='8 g'"], [], "data.sensor_full_scale"),
    ("input-clip-not-power-of-two", "data", ["data.input_clip_rms=6"], [],
     "data.input_clip_rms = 6 (command line): must be a power of two from 1 to 64"),
    ("input-clip-too-large", "train", ["data.input_clip_rms=128"], [], "data.input_clip_rms = 128"),
    ("unknown-set-key", "data", ["train.epoch=3"], [], "train.epoch"),
    ("unknown-file-key", "data", ["--config", "{build}/../extra.toml"], [], "train.epohcs"),
    # serial ports and URLs
    ("port-scheme", "hil", ["--port", "ftp://board"], [model()], "ftp://"),
    ("port-socket-malformed", "hil", ["--port", "socket://127.0.0.1:notaport"], [model()], "socket://127.0.0.1:notaport"),
    ("port-no-device", "hil", ["--port", "/dev/ttyDRSN_NOPE"], [model()], "/dev/ttyDRSN_NOPE"),
    ("port-refused", "hil", ["--port", "socket://127.0.0.1:{free_port}"], [model()], "socket://127.0.0.1:"),
    ("port-semihost-remote", "hil", ["--port", "semihost://lab:4321"], [model()],
     "hil.port = 'semihost://lab:4321' (command line): the semihosting link only reaches a board emulated on this machine"),
    ("port-semihost-refused", "hil", ["--port", "semihost://127.0.0.1:{free_port}"], [model()], "semihost://127.0.0.1:"),
    ("emulated-link-unknown", "hil", ["hil.emulated_link='fast'"], [model()], "hil.emulated_link"),
    ("ports-scheme", "hil", ["hil.ports=['socket://127.0.0.1:1', 'ftp://board']"], [model()], "ftp://board: unknown URL scheme"),
    ("ports-not-list", "hil", ["hil.ports='socket://127.0.0.1:1'"], [model()], "hil.ports"),
    ("ports-twice", "hil", ["--port", "socket://127.0.0.1:5", "--port", "socket://127.0.0.1:5"], [model()],
     "socket://127.0.0.1:5 is listed twice"),
    ("port-and-ports-same", "hil", ["hil.port='127.0.0.1:5'", "hil.ports=['socket://127.0.0.1:5']"], [model()],
     "socket://127.0.0.1:5 is given twice"),
    ("ports-refused", "hil", ["--port", "socket://127.0.0.1:{free_port}", "--port", "socket://127.0.0.1:1"],
     [model()], "all 2 boards failed"),
    ("flash-count-zero", "flash", ["--count", "0"], [], "--count 0"),
    ("flash-count-real", "flash", ["--count", "2", "--real", "--port", "/dev/ttyDRSN_NOPE"], [], "--count 2"),
    # model files
    ("model-missing", "firmware", [], [], "model_int8.tflite"),
    ("model-truncated", "firmware", [], [model(lambda m: m[:len(m) // 2])], "model_int8.tflite"),
    ("model-garbage", "firmware", [], [model(b"\x00" * 4 + b"TFL3" + bytes(range(256)) * 8)], "model_int8.tflite"),
    ("model-not-flatbuffer", "firmware", [], [model(b"this is not a model\n" * 10)], "model_int8.tflite"),
    ("model-empty", "firmware", [], [model(b"")], "model_int8.tflite"),
    ("model-float", "firmware", [], [model(lambda m: tiny_tflite(dtype="float"))], "model_int8.tflite"),
    ("model-shape", "firmware", [], [model(lambda m: tiny_tflite(window=256))], "data.window = 512"),
    ("model-op", "firmware", [], [model(lambda m: tiny_tflite(op="CUMSUM"))], "CUMSUM"),
    ("model-ptq-truncated", "firmware", ["firmware.model='ptq'"],
     [put("model/model_ptq_int8.tflite", lambda m: m[:100])], "model_ptq_int8.tflite"),
    ("hil-model-truncated", "hil", ["--port", "socket://127.0.0.1:1"], [model(lambda m: m[:-40])], "model_int8.tflite"),
    ("benchmark-model-garbage", "benchmark", [], [model(b"\xff" * 300)], "model_int8.tflite"),
    # a model of the user's own (--model)
    ("byom-missing", "firmware", ["--model", "{build}/nope.tflite"], [], "nope.tflite does not exist; give the path"),
    ("byom-directory", "firmware", ["--model", "{build}/model"], [model()], "is a directory"),
    ("byom-not-flatbuffer", "firmware", ["--model", "{build}/mine.tflite"],
     [put("mine.tflite", b"PK\x03\x04 a zip, not a model" * 8)], "mine.tflite is not a TFLite flatbuffer"),
    ("byom-truncated", "firmware", ["--model", "{build}/mine.tflite"],
     [put("mine.tflite", lambda m: m[:len(m) // 2])], "mine.tflite"),
    ("byom-float", "firmware", ["--model", "{build}/mine.tflite"],
     [put("mine.tflite", lambda m: tiny_tflite(dtype="float"))], "mine.tflite cannot be deployed"),
    ("byom-op-not-tflm", "firmware", ["--model", "{build}/mine.tflite"],
     [put("mine.tflite", lambda m: tiny_tflite(op="CUMSUM"))], "op 1 CUMSUM is not an int8 builtin TFLite Micro "
                                                              "implements; neither back end can run it"),
    # every op the audit accepts has a compiled unit; one given an FC's tensors is refused by it
    *[(f"byom-{op.lower()}-bad-tensors", "firmware", ["--model", "{build}/mine.tflite"],
       [put("mine.tflite", lambda m, op=op: tiny_tflite(op=op))],
       f"op 1 {op} (output): inputs [[1, 512], [10, 512], [10]] and output [1, 10]")
      for op in ("RSQRT", "QUANTIZE", "LEAKY_RELU", "HARD_SWISH", "RELU", "TANH", "LOGISTIC", "RELU6")],
    ("byom-hil-missing", "hil", ["--model", "{build}/nope.tflite", "--port", "socket://127.0.0.1:1"], [],
     "nope.tflite does not exist"),
    ("byom-benchmark-float", "benchmark", ["--model", "{build}/mine.tflite"],
     [put("mine.tflite", lambda m: tiny_tflite(dtype="float"))], "mine.tflite cannot be deployed"),
    ("byom-random-vectors", "hil", ["hil.random_vectors=0"], [], "hil.random_vectors"),
    ("byom-raw-input", "hil", ["--model", "{build}/mine.tflite", "--input", "raw", "--port",
                               "socket://127.0.0.1:1"],
     [put("mine.tflite", lambda m: m)], 'hil.input = "raw"'),
    ("byom-standalone", "firmware", ["--model", "{build}/mine.tflite", "--standalone"],
     [put("mine.tflite", lambda m: m)], "firmware.standalone = true"),
    # data files (data.source = "files")
    ("rec-empty-npz", "data", files(), [put("rec/normal_1.npz", signal=np.zeros(0))], "normal_1.npz"),
    ("rec-nan", "data", files(), [put("rec/normal_1.npz", signal=np.r_[SIG, np.nan])], "NaN"),
    ("rec-short", "data", files(), [put("rec/normal_1.npz", signal=SIG[:100])], "normal_1.npz"),
    ("rec-int", "data", files(), [put("rec/normal_1.npz", signal=(SIG * 1000).astype(np.int16))], "int16"),
    ("rec-multichannel", "data", files(), [put("rec/normal_1.npz", signal=np.stack([SIG, SIG], 1))], "one channel"),
    ("rec-rate", "data", files("data.files.resample=false"), [put("rec/normal_1.npz", signal=SIG, fs=48000.0)],
     "48000 Hz"),
    ("rec-mat-key", "data", files("data.files.key='FE_time'"), [mat("normal_97.mat", X097_DE_time=SIG[:, None])],
     "data.files.key"),
    ("rec-mat-rate", "data", files("data.files.resample=false"), [mat("normal_97.mat", X097_DE_time=SIG[:, None], X097RPM=1796.0,
                                           fs_hz=48000.0)], "normal_97.mat"),
    ("rec-csv-text", "data", files(), [put("rec/normal_1.csv", text="v\n1.0\nabc\n")], "normal_1.csv"),
    ("rec-missing-path", "data", ["data.source='files'", "data.files.paths=['{rec}/nope.npz']"], [], "nope.npz"),
    ("rec-matrix-mat", "data", files(), [mat("normal_1.mat", C0A_100_505_1=np.stack([SIG, SIG, SIG], 1))],
     "pick one with data.files.key = '1'"),
    ("rec-channel-range", "data", files("data.files.key='4'"), [mat("normal_1.mat", run=np.stack([SIG, SIG, SIG], 1))],
     "run has 3 channels (shape (4000, 3)), no channel 4"),
    ("rec-two-arrays-mat", "data", files(), [mat("normal_1.mat", Channel_1=SIG[:, None], Channel_2=SIG[:, None])],
     "several numeric arrays"),
    ("rec-decimal-comma-or-two-columns", "data", files(),
     [put("rec/normal_1.csv", text="".join(f"{int(v * 100)},{abs(int(v * 1000)) % 100}\n" for v in SIG))],
     "every line is two whole numbers split by a comma"),
    ("rec-text-preamble-no-numbers", "data", files(),
     [put("rec/normal_1.csv", text="Information line\nSampling: fast\nData\n")], "no column of numbers"),
]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_table_has_enough_cases():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(case, tmp_path, good_model):
    name, stage, words, steps, expect = case
    build, rec = tmp_path / "build", tmp_path / "rec"
    # Earlier artifacts that a failed run must leave exactly as they were.
    for rel in ("reports/train.json", "reports/firmware.json", "reports/hil.json",
                "firmware/mps2-an386/src/selftest.c", "data/train.npz"):
        (build / rel).parent.mkdir(parents=True, exist_ok=True)
        (build / rel).write_bytes(f"earlier {rel}\n".encode())
    (tmp_path / "extra.toml").write_text(
        (ROOT / "configs" / "smoke.toml").read_text().replace("epochs = 2", "epochs = 2\nepohcs = 3"))
    for step in steps:
        step(build, rec, good_model)
    fill = {"build": str(build), "rec": str(rec), "free_port": str(_free_port())}
    args = [w.format(**fill) for w in words]
    if not args or not args[0].startswith("--"):
        args = [x for item in args for x in ("--set", item)]
    if "--config" not in args:
        args = ["--config", SMOKE, *args]
    before = _snapshot(build)

    proc = subprocess.run([sys.executable, "-m", "drsn_edge.cli", stage, *args, "--build-dir", str(build)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)

    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"drsn-edge {stage}: error: "), lines[0]
    assert expect in lines[0], lines[0]
    assert _snapshot(build) == before, "the failed run changed or added files in the build dir"
