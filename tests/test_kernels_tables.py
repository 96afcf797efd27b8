"""ELU and RSQRT (256-entry tables computed at generation time) and SPACE_TO_BATCH_ND /
BATCH_TO_SPACE_ND (copies) against the TFLM host runtime, byte for byte.

The table tests are exhaustive: every branch's input holds all 256 int8 values (RSQRT: all
values TFLM accepts, those at or above the zero point), over branches calibrated on
different ranges, so one conversion gives several input and output scales and zero points.
The converter of TF 2.21 leaves ELU in float32 (DEQUANTIZE -> ELU -> QUANTIZE) even with
int8 builtins only; an int8 ELU, what other converters write, is made here of that chain:
the int8 tensors around it, with the converter's calibrated quantization, joined by one ELU.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from firmware_gen import codegen, hostlib, quant  # noqa: E402
from firmware_gen import tflm_oracle as oracle  # noqa: E402
from firmware_gen.ops import elu, rsqrt, space_batch  # noqa: E402
from tests.test_byom import _layers, host_library, keras_model, rebuilt  # noqa: E402
from tests.test_kernels import convert, random_range  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SEEDS = (3, 17)
ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def int8_elu(model: bytes) -> bytes:
    """The model with every float ELU between a DEQUANTIZE and a QUANTIZE made an int8 ELU
    from the DEQUANTIZE's input to the QUANTIZE's output (the two go)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    op_codes = schema.BuiltinOperator

    def edit(m):
        g = m.subgraphs[0]
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
        producer = {int(o): k for k, op in enumerate(g.operators) for o in op.outputs}
        users: dict[int, list[int]] = {}
        for k, op in enumerate(g.operators):
            for i in op.inputs:
                users.setdefault(int(i), []).append(k)
        gone = set()
        for op in g.operators:
            if codes[op.opcodeIndex] != op_codes.ELU:
                continue
            d, (q,) = producer[int(op.inputs[0])], users[int(op.outputs[0])]
            dq, qu = g.operators[d], g.operators[q]
            assert codes[dq.opcodeIndex] == op_codes.DEQUANTIZE and codes[qu.opcodeIndex] == op_codes.QUANTIZE
            op.inputs, op.outputs = dq.inputs, qu.outputs
            gone |= {d, q}
        assert gone, "no float ELU to make int8"
        g.operators = [op for k, op in enumerate(g.operators) if k not in gone]
    return rebuilt(model, edit)


def branch_ranges(rng, fixed):
    """The fixed calibration ranges and as many random ones (random_range: random width and
    offset, containing zero)."""
    return list(fixed) + [random_range(rng, 0.02, 60.0) for _ in fixed]


def ops_of(model: bytes, opcode: str):
    return [op for op in oracle.read_operators(model) if op.opcode == opcode]


def quant_sets(ops) -> set:
    return {(float(op.inputs[0].scale), op.inputs[0].zero_point, float(op.outputs[0].scale),
             op.outputs[0].zero_point) for op in ops}


# --- ELU ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_elu_table_is_tflms_for_every_input(seed):
    """Every int8 input of int8 ELUs over ten calibrations (inputs from about +-0.05 to
    +-100, zero points across the range): the table (elu.table, via the C dk_lut_s8) gives
    TFLM's output byte for byte."""
    rng = np.random.default_rng(seed)
    fixed = [(-1, 1), (-8, 2), (-0.2, 6), (-100, 40), (-0.05, 0.05)]
    model = int8_elu(convert([([((1, 256), lo, hi)], tf.nn.elu) for lo, hi in branch_ranges(rng, fixed)],
                             seed, samples=16))
    ops = ops_of(model, "ELU")
    assert len(ops) == 10 and len(quant_sets(ops)) == 10
    assert all(op.inputs[0].type == op.outputs[0].type == "INT8" for op in ops)
    feeds = [rng.permutation(ALL_INT8).reshape(t.shape) for t in oracle.model_inputs(model)]
    tensors = oracle.run_capture(model, feeds)
    saturated = 0
    for op in ops:
        x, y = op.inputs[0], op.outputs[0]
        xs, want = tensors[x.index], tensors[y.index]
        assert sorted(xs.reshape(-1).tolist()) == list(range(-128, 128))     # every input byte
        table = np.array(elu.table(x.scale, x.zero_point, y.scale, y.zero_point), np.int8)
        assert np.array_equal(hostlib.lut(xs, table), want), (float(x.scale), x.zero_point,
                                                              float(y.scale), y.zero_point)
        saturated += int((want == -128).any() or (want == 127).any())
        assert len(np.unique(want)) > 20                 # not a constant: the test has teeth
    assert saturated >= 3


def test_elu_table_steps():
    """On a scale where x / s_out is exact, the positive half is the input shifted by the
    zero points; below zero, round((expf(x) - 1) / s_out): -0.88 -> -1 for x = -0.25, and
    -4 for x = -32 (expf(-32) - 1 is -1 in float32)."""
    t = elu.table(0.25, 0, 0.25, -10)
    assert t[:128] == [v - 10 for v in range(128)]
    assert t[255] == -1 - 10 and t[128] == -4 - 10


# --- RSQRT ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_rsqrt_table_is_tflms_for_every_input(seed):
    """tf.math.rsqrt over ten calibrations (inputs up to 0.01 .. 3000; zero point -128 for a
    range from 0, higher for one that starts below 0): for every input TFLM takes (at or
    above the zero point) the table gives TFLM's output byte for byte; below the zero point
    TFLM stops the inference (and the table holds 127)."""
    rng = np.random.default_rng(seed)
    fixed = [(0, 1), (0, 8), (0.5, 100), (0, 0.01), (-0.5, 4)]
    ranges = fixed + [(0, float(np.exp(rng.uniform(np.log(0.01), np.log(3000))))) for _ in range(4)] + [
        (-float(rng.uniform(0.1, 2)), float(rng.uniform(2, 20)))]
    model = convert([([((1, 256), lo, hi)], tf.math.rsqrt) for lo, hi in ranges], seed, samples=16)
    ops = ops_of(model, "RSQRT")
    assert len(ops) == 10 and len(quant_sets(ops)) == 10
    assert sum(op.inputs[0].zero_point > -128 for op in ops) >= 2
    inputs = oracle.model_inputs(model)
    feeds = [rng.permutation(np.maximum(ALL_INT8, t.zero_point)).reshape(t.shape) for t in inputs]
    tensors = oracle.run_capture(model, feeds)
    for op in ops:
        x, y = op.inputs[0], op.outputs[0]
        xs, want = tensors[x.index], tensors[y.index]
        assert set(xs.reshape(-1).tolist()) == set(range(x.zero_point, 128))
        table = np.array(rsqrt.table(x.scale, x.zero_point, y.scale, y.zero_point), np.int8)
        assert np.array_equal(hostlib.lut(xs, table), want), (float(x.scale), x.zero_point,
                                                              float(y.scale), y.zero_point)
        assert want[xs == x.zero_point].tolist() == [127] * int((xs == x.zero_point).sum())
        assert len(np.unique(want)) > 8
        below = ALL_INT8[ALL_INT8 < x.zero_point]
        assert (table[below.view(np.uint8)] == 127).all()
    below = [f.copy() for f in feeds]
    for f, t in zip(below, inputs):
        f.reshape(-1)[0] = -128 if t.zero_point > -128 else f.reshape(-1)[0]
    with pytest.raises(RuntimeError):
        oracle.run_capture(model, below)


def test_inverse_square_root_is_l2_normalizations():
    """rsqrt.inv_sqrt is the fixed-point step the L2_NORMALIZATION kernel runs (C, tested
    against TFLM): on a row [d, 0, ...] that kernel outputs d times the multiplier, so both
    give the same int8 for every d a row of int8 can hold."""
    for d in range(1, 128):
        m, s = rsqrt.inv_sqrt(d * d)
        want = max(-128, min(127, quant.multiply_by_quantized_multiplier(d, m, 7 - s)))
        got = hostlib.l2_normalization(np.array([[d, 0, 0]], np.int8), 0)[0, 0]
        assert got == want, d


# --- SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND --------------------------------------------------------

# (rank, block, paddings or crops, input spatial size, channels)
SPACE_TO_BATCH = [(4, [2, 2], [[1, 0], [2, 1]], (5, 5), 3), (4, [3, 2], [[0, 1], [1, 1]], (5, 4), 2),
                  (4, [1, 3], [[0, 0], [0, 0]], (2, 6), 4), (4, [2, 1], [[2, 2], [0, 0]], (4, 3), 1),
                  (3, [2], [[1, 1]], (6,), 3), (3, [3], [[2, 0]], (7,), 2)]
BATCH_TO_SPACE = [(4, [2, 2], [[1, 0], [0, 1]], (3, 3), 2), (4, [3, 2], [[0, 0], [1, 2]], (2, 3), 3),
                  (4, [1, 2], [[0, 0], [0, 0]], (4, 2), 1), (3, [2], [[1, 2]], (5,), 4),
                  (3, [4], [[0, 0]], (2,), 3)]


def zeroed_arena_capture(model: bytes, inputs) -> dict[int, np.ndarray]:
    """oracle.run_capture with an arena the C library maps fresh from the OS (larger than
    malloc's largest mmap threshold, 32 MB), so zero-filled, as a board's static arena is at
    boot. TFLM's SPACE_TO_BATCH_ND pads with a byte of its arena it never sets; in an arena
    reused from freed heap memory that byte is whatever was there."""
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(model, arena_size=64 << 20,
                                            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    return {t.index: np.array(interp.GetTensor(t.index, 0)["tensor_data"]).reshape(t.shape)
            for op in oracle.read_operators(model) for t in (op.inputs[0], op.outputs[0])}


def space_batch_model(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    branches = []
    for rank, block, pads, size, c in SPACE_TO_BATCH:
        branches.append(([((1, *size, c), *random_range(rng))],
                         lambda x, b=block, p=pads: tf.space_to_batch_nd(x * 1.0, b, p) * 1.0))
    for rank, block, crops, size, c in BATCH_TO_SPACE:
        branches.append(([((int(np.prod(block)), *size, c), *random_range(rng))],
                         lambda x, b=block, p=crops: tf.batch_to_space(x * 1.0, b, p) * 1.0))
    return convert(branches, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_space_to_batch_and_back_match_tflm(seed):
    """SPACE_TO_BATCH_ND (dk_space_to_batch_s8) and BATCH_TO_SPACE_ND (dk_index_map_s8) over
    rank 3 and 4, block sizes 1 to 3 per axis, paddings and crops before and after, against
    TFLM's tensors on random and extreme inputs. The padding is TFLM's byte 0, not the zero
    point (some branches have zero points far from 0, where the two differ)."""
    model = space_batch_model(seed)
    s2b, b2s = ops_of(model, "SPACE_TO_BATCH_ND"), ops_of(model, "BATCH_TO_SPACE_ND")
    assert len(s2b) == len(SPACE_TO_BATCH) and len(b2s) == len(BATCH_TO_SPACE)
    assert {len(op.inputs[0].shape) for op in s2b + b2s} == {3, 4}
    rng = np.random.default_rng(seed)
    padded_away_from_zero = 0
    for draw in range(3):
        feeds = [(rng.integers(-128, 128, size=t.shape) if draw == 0 else
                  np.full(t.shape, (-128, 127)[draw - 1])).astype(np.int8) for t in oracle.model_inputs(model)]
        tensors = zeroed_arena_capture(model, feeds)
        for op in s2b:
            x, y = tensors[op.inputs[0].index], tensors[op.outputs[0].index]
            p = space_batch.space_to_batch(op.index, op)
            got = hostlib.space_to_batch(x, p).reshape(y.shape)
            assert np.array_equal(got, y), (op.index, list(op.inputs[0].shape), p)
            pads = np.asarray(op.inputs[2].data).sum()
            padded_away_from_zero += int(pads > 0 and op.outputs[0].zero_point != 0 and draw == 0)
            # every input byte lands once; the rest is padding
            assert got.size - x.size == int((got == 0).sum() - (x == 0).sum())
        for op in b2s:
            x, y = tensors[op.inputs[0].index], tensors[op.outputs[0].index]
            dims, tables = space_batch.batch_to_space(op.index, op)
            got = hostlib.index_map(x, dims, tables, y.shape)
            assert np.array_equal(got, y), (op.index, list(op.inputs[0].shape))
    assert padded_away_from_zero >= 2


def test_space_to_batch_refuses_what_tflm_does_not_take_in_one_line():
    """A block that does not divide the padded input is one line naming the op."""
    from drsn_edge.errors import UserError
    model = space_batch_model(SEEDS[0])
    op = ops_of(model, "SPACE_TO_BATCH_ND")[0]
    op.inputs[2].data = np.array([[1, 1], [2, 1]], np.int32)      # 7 rows for a block of 2
    with pytest.raises(UserError, match=r"^op \d+ SPACE_TO_BATCH_ND .*does not take") as err:
        space_batch.space_to_batch(op.index, op)
    assert "\n" not in str(err.value)
    op.inputs[2].data = np.array([1, 1, 2], np.int32)             # three numbers for two sides
    with pytest.raises(UserError, match=r"^op \d+ SPACE_TO_BATCH_ND .*do not fit a rank-4 input$"):
        space_batch.space_to_batch(op.index, op)


# --- through the generated C on the host ------------------------------------------------------

def elu_model() -> bytes:
    """Dense -> ELU -> Dense -> ELU (Keras activation="elu" and layers.ELU), ELUs made int8."""
    L = _layers()
    return int8_elu(keras_model((12,), lambda x: L.ELU()(L.Dense(10)(L.Dense(16, activation="elu")(x)))))


def run_generated(model: bytes, tmp_path, n: int = 32, seed: int = 1) -> tuple[np.ndarray, np.ndarray, dict]:
    """The generated C (built for the host) and TFLM on n random inputs (two at the ends), and
    the generator's model info."""
    codegen.check(model, "m")
    lib, info = host_library(model, tmp_path)
    inp = oracle.model_inputs(model)[0]
    q = np.random.default_rng(seed).integers(-128, 128, size=(n, *inp.shape[1:]), dtype=np.int16).astype(np.int8)
    q[0], q[1] = -128, 127
    ref = oracle.run(model, q).reshape(n, -1)
    got = np.zeros_like(ref)
    for i in range(n):
        x = np.ascontiguousarray(q[i])
        assert lib.model_invoke(x.ctypes.data_as(ctypes.c_void_p), got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    return got, ref, info


def test_generated_c_with_elu_is_bit_exact_to_tflm(tmp_path):
    model = elu_model()
    assert [op.opcode for op in oracle.read_operators(model)].count("ELU") == 2
    got, ref, info = run_generated(model, tmp_path)
    np.testing.assert_array_equal(got, ref)
    assert len(np.unique(ref, axis=0)) > 1 and "ELU" in info["ops"]


def test_an_elu_model_deploys_and_is_bit_exact_on_the_board(tmp_path, capsys, monkeypatch):
    """`drsn-edge firmware --model` with int8 ELUs: the boot self-test on mps2-an386 gives
    TFLM's outputs, and `hil --model` finds 32 random vectors bit-exact."""
    import json

    import boards
    from tests.test_byom import run_cli, user_model_build
    model = elu_model()
    _, build, common = user_model_build(tmp_path, monkeypatch, model, "elu")
    code, _, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    assert rep["selftest"]["passed"] and rep["model"]["source"] == "user"
    assert rep["model"]["op_counts"]["ELU"] == 2
    with boards.Emulator("mps2-an386", build / "firmware" / "mps2-an386" / "firmware.elf") as emu:
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "32")
    assert code == 0, err
    assert "32/32 vectors bit-exact on mps2-an386" in out
