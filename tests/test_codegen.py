"""The compiled runtime: C generated from an int8 .tflite equals the TFLM host runtime bit for bit,
for the PTQ smoke model and the QAT one `drsn-edge quantize` ships (their quantization
parameters differ, and codegen picks kernels from them)."""

import ctypes
import subprocess

import numpy as np
import pytest

from drsn_edge.errors import UserError
from firmware_gen import codegen, tflm_oracle
from tests.conftest import smoke_vectors

EMIT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_int8), ctypes.c_uint32, ctypes.c_void_p)


@pytest.fixture(scope="module", params=["ptq", "qat"])
def model(request):
    return request.getfixturevalue({"ptq": "smoke_tflite", "qat": "smoke_qat_tflite"}[request.param])


@pytest.fixture(scope="module")
def generated(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    info = codegen.generate(model, out, name="smoke_drsn")
    lib = out / "libmodel.so"
    srcs = [out / "model.c", out / "model_data.c", *codegen.runtime_sources()]
    inc = [f"-I{p}" for p in codegen.include_dirs()]
    proc = subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                           "-o", str(lib), *inc, *map(str, srcs)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, info, ctypes.CDLL(str(lib))


def test_generated_model_is_bit_exact_to_tflm_on_test_vectors(smoke_build, model, generated):
    _, info, lib = generated
    xs, refs = smoke_vectors(smoke_build, model, 150)
    n_out = int(np.prod(info["output"]["shape"]))
    mismatches = 0
    for q, ref in zip(xs, refs):
        q = np.ascontiguousarray(q[None])
        out = np.zeros(n_out, np.int8)
        assert lib.model_invoke(q.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p)) == 0
        mismatches += not np.array_equal(out, ref)
    assert len(xs) >= 100 and mismatches == 0


def test_every_layer_matches_tflm_intermediate_tensors(smoke_build, model, generated):
    _, info, lib = generated
    q = np.ascontiguousarray(smoke_vectors(smoke_build, model, 1)[0])
    got = {}
    cb = EMIT(lambda i, data, n, ctx: got.__setitem__(i, np.ctypeslib.as_array(data, shape=(n,)).copy()))
    out = np.zeros(int(np.prod(info["output"]["shape"])), np.int8)
    assert lib.model_invoke_debug(q.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), cb, None) == 0
    ref = tflm_oracle.run_capture(model, [q])
    assert len(got) == len(info["layers"]) == len(info["ops"])
    for i, layer in enumerate(info["layers"]):
        np.testing.assert_array_equal(got[i], ref[layer["tensor"]].reshape(-1), err_msg=layer["name"])


def test_generated_c_is_readable_and_deterministic(model, generated, tmp_path):
    out, info, _ = generated
    model_c = (out / "model.c").read_text()
    # a header comment for every operator, naming the op, with shapes and quantization
    for k, op in enumerate(info["ops"]):
        assert f"/* [{k}] {op} (" in model_c
    assert "s=" in model_c and "zp=" in model_c
    # parameters as designated initializers, from the struct descriptions
    assert ".input_offset = " in model_c and ".activation = { .min = " in model_c
    assert "__attribute__((aligned(16)))" in (out / "model_data.c").read_text()
    codegen.generate(model, tmp_path, name="smoke_drsn")
    for name in ("model.c", "model_data.c", "model_info.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_arena_plan_reuses_memory(generated):
    _, info, _ = generated
    activations = sum(int(np.prod(layer["shape"])) for layer in info["layers"] if layer["op"] not in codegen.ALIASES)
    assert 0 < info["arena_bytes"] < activations / 2


def test_a_float_model_is_refused_with_a_clear_error(tmp_path):
    import tensorflow as tf
    import keras
    inp = keras.Input((8,), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with pytest.raises(UserError, match="not int8"):
        codegen.generate(converter.convert(), tmp_path)
    assert not list(tmp_path.iterdir())


# --- streaming overlap: a layer whose input dies with it writes over that input ---------------

def simulate_conv1d_blocks(in_w, in_c, out_w, out_c, kernel, stride, pad, block, lead) -> bool:
    """Run the block order of dk_conv1d_s8(_fast) on byte addresses (input at 0, output at
    -lead): each block reads its columns' input, then writes its outputs. False when a write
    lands on an input byte that a later read still needs."""
    clobbered = np.zeros(in_w * in_c, bool)
    for x0 in range(0, out_w, block):
        n = min(block, out_w - x0)
        lo = max(0, x0 * stride - pad)
        hi = min(in_w, (x0 + n - 1) * stride - pad + kernel)
        if clobbered[lo * in_c:hi * in_c].any():
            return False
        a, b = -lead + x0 * out_c, -lead + (x0 + n) * out_c
        clobbered[max(0, a):max(0, min(b, in_w * in_c))] = True
    return True


@pytest.mark.parametrize("geo", [
    dict(in_w=40, in_c=16, out_w=40, out_c=16, kernel=3, stride=1, pad=1, block=4),    # the DRSN's k=3
    dict(in_w=64, in_c=8, out_w=32, out_c=16, kernel=3, stride=2, pad=0, block=8),     # strided, wider
    dict(in_w=50, in_c=4, out_w=50, out_c=24, kernel=1, stride=1, pad=0, block=16),    # 1x1 expanding
    dict(in_w=30, in_c=12, out_w=30, out_c=4, kernel=7, stride=1, pad=3, block=2),     # narrowing
])
def test_the_stream_lead_is_the_least_that_keeps_every_input_byte_until_read(geo):
    from firmware_gen.ops import conv1d
    lead = conv1d.lead(geo)
    assert simulate_conv1d_blocks(**geo, lead=lead)
    if lead > 0:
        assert not simulate_conv1d_blocks(**geo, lead=lead - 1)


def test_a_residual_cnn_shares_a_dying_input_with_its_convolution(tmp_path):
    """ResNet-8's first stack keeps three 16 KB tensors alive (the block input for the ADD,
    the convolutions' input and output); the second convolution streams over its dying
    input, so the arena is a third smaller. Tensors that share bytes while both alive are
    only such pairs, the output at least the kernel's lead before the input."""
    from tests.test_byom import _layers, keras_model, resnet8
    model = keras_model(*resnet8(_layers()))
    ops = tflm_oracle.read_operators(model)
    inp, outp = tflm_oracle.model_inputs(model)[0], tflm_oracle.model_outputs(model)[0]
    steps = codegen.plan_steps(ops, outp.index)
    placed, alias, arena = codegen.plan_memory(ops, inp.index, outp.index, steps)
    streaming = {ops[st.last].outputs[0].index: (st.info["streams_over"], st.lead(st.info))
                 for st in steps if "streams_over" in st.info}
    assert len(streaming) >= 3
    for a, pa in placed.items():
        for b, pb in placed.items():
            both_alive = not (pa.last < pb.first or pb.last < pa.first)
            share = pa.offset < pb.offset + pb.size and pb.offset < pa.offset + pa.size
            if a != b and both_alive and share:
                assert any(out in streaming and streaming[out][0] == src
                           and placed[out].offset + streaming[out][1] <= placed[src].offset
                           for out, src in ((a, b), (b, a))), (a, b)
    no_streams = [codegen.Step(**{**st.__dict__, "lead": None}) for st in codegen.plan_steps(ops, outp.index)]
    assert arena <= 0.75 * codegen.plan_memory(ops, inp.index, outp.index, no_streams)[2]
