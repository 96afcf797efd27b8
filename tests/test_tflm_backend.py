"""The TFLM interpreter back end: generated sources, the checks on a user's TFLM, and -- when
TFLM_LIB / TFLM_INCLUDE point at a real TFLM build -- the firmware on QEMU, bit-exact to
the TFLM host runtime.

CI has no TFLM (its sources are in no package registry), so everything but the last test
runs against a tiny hand-made .tflite and a fake TFLM tree: the headers the back end reads,
and small archives built here for chosen cores.
"""

import hashlib
import json
import os
import re
import subprocess

import flatbuffers
import numpy as np
import pytest
import serial

import boards
from drsn_edge.errors import UserError
from firmware_gen import tflm_backend, tflm_oracle
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
TINY_OPS = ["ADD", "RESHAPE", "FULLY_CONNECTED", "ADD", "SOFTMAX"]


def tiny_model(n: int = 16) -> bytes:
    """int8 [1,n,1] -> ADD(x,x) -> RESHAPE -> FULLY_CONNECTED -> ADD -> SOFTMAX [1,4]:
    four op types, one of them used twice. Built with the schema, no TensorFlow needed."""
    def quant(scale, zero_point):
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [scale], [zero_point]
        return q

    def tensor(shape, kind, buffer, name, q=None):
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name, t.quantization = list(shape), kind, buffer, name, q
        return t

    def op(code, ins, outs, kind, options):
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, ins, outs
        o.builtinOptionsType, o.builtinOptions = kind, options
        return o

    rng = np.random.default_rng(1)
    buffers = [schema.BufferT() for _ in range(4)]
    for buf, data in zip(buffers[1:], [np.array([1, n], np.int32),
                                       rng.integers(-127, 128, (4, n)).astype(np.int8),
                                       rng.integers(-500, 500, 4).astype(np.int32)]):
        buf.data = list(data.tobytes())
    i8, i32 = schema.TensorType.INT8, schema.TensorType.INT32
    tensors = [tensor([1, n, 1], i8, 0, "input", quant(0.05, 3)),
               tensor([1, n, 1], i8, 0, "sum", quant(0.1, 3)),
               tensor([2], i32, 1, "shape"),
               tensor([1, n], i8, 0, "flat", quant(0.1, 3)),
               tensor([4, n], i8, 2, "w", quant(0.02, 0)),
               tensor([4], i32, 3, "b", quant(0.002, 0)),
               tensor([1, 4], i8, 0, "logits", quant(0.5, -2)),
               tensor([1, 4], i8, 0, "twice", quant(1.0, -2)),
               tensor([1, 4], i8, 0, "output", quant(1 / 256, -128))]
    codes = []
    for builtin in (schema.BuiltinOperator.ADD, schema.BuiltinOperator.RESHAPE,
                    schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.SOFTMAX):
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, builtin, 1
        codes.append(code)
    reshape, softmax = schema.ReshapeOptionsT(), schema.SoftmaxOptionsT()
    reshape.newShape, softmax.beta = [1, n], 1.0
    opts = schema.BuiltinOptions
    sg = schema.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.name = tensors, [0], [8], "main"
    sg.operators = [op(0, [0, 0], [1], opts.AddOptions, schema.AddOptionsT()),
                    op(1, [1, 2], [3], opts.ReshapeOptions, reshape),
                    op(2, [3, 4, 5], [6], opts.FullyConnectedOptions,
                       schema.FullyConnectedOptionsT()),
                    op(0, [6, 6], [7], opts.AddOptions, schema.AddOptionsT()),
                    op(3, [7], [8], opts.SoftmaxOptions, softmax)]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [sg], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


def resolver_header(ops) -> str:
    """A MicroMutableOpResolver header in TFLM's style, knowing only `ops`."""
    methods = "\n".join(
        f"  TfLiteStatus Add{name}(\n      const TFLMRegistration& registration = "
        f"Register_{op}()) {{\n    return AddBuiltin(BuiltinOperator_{op}, registration, "
        f"Parse{name});\n  }}\n" for op, name in ops.items())
    return f"template <unsigned int tOpCount>\nclass MicroMutableOpResolver {{\n public:\n{methods}}};\n"


FAKE_OPS = {"ADD": "Add", "RESHAPE": "Reshape", "FULLY_CONNECTED": "FullyConnected",
            "SOFTMAX": "Softmax", "CONV_2D": "Conv2D"}


def archive(tmp_path, cflags, name="libfake.a", gcc="arm-none-eabi-gcc", ar="arm-none-eabi-ar",
            source="int tflm_fake(void) { return 1; }\n"):
    src, obj, lib = tmp_path / f"{name}.c", tmp_path / f"{name}.o", tmp_path / name
    src.write_text(source)
    subprocess.run([gcc, *cflags, "-c", str(src), "-o", str(obj)], check=True)
    lib.unlink(missing_ok=True)
    subprocess.run([ar, "rcs", str(lib), str(obj)], check=True)
    return lib


@pytest.fixture
def fake_tflm(tmp_path, monkeypatch):
    """A TFLM tree with the headers the back end looks for, and an M4F library."""
    root = tmp_path / "tflite-micro"
    micro = root / "tensorflow/lite/micro"
    micro.mkdir(parents=True)
    (micro / "micro_interpreter.h").write_text("// fake\n")
    (micro / "micro_mutable_op_resolver.h").write_text(resolver_header(FAKE_OPS))
    for header in ("third_party/flatbuffers/include/flatbuffers/flatbuffers.h",
                   "third_party/gemmlowp/fixedpoint/fixedpoint.h"):
        (root / header).parent.mkdir(parents=True)
        (root / header).write_text("// fake\n")
    monkeypatch.delenv("TFLM_LIB", raising=False)
    monkeypatch.delenv("TFLM_INCLUDE", raising=False)
    return archive(tmp_path, M4F), root


# --- generated sources ----------------------------------------------------------------------

def test_model_data_embeds_the_tflite_aligned_with_its_length_and_hash(tiny, tmp_path):
    info = tflm_backend.generate(tiny, tmp_path, name="tiny")
    text = (tmp_path / "model_data.cc").read_text()
    array = re.search(r"alignas\(16\) const unsigned char tflm_model_data\[(\d+)\] = \{(.*?)\};",
                      text, re.S)
    assert array and int(array.group(1)) == len(tiny)
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", array.group(2))) == tiny
    assert re.search(rf"tflm_model_len = {len(tiny)}u;", text)
    digest = re.search(r"tflm_model_sha256\[32\] = \{(.*?)\};", text).group(1)
    assert bytes(int(b, 16) for b in digest.split(",")) == hashlib.sha256(tiny).digest()
    assert info["sha256"] == hashlib.sha256(tiny).hexdigest() and info["backend"] == "tflm"

    # The compiler honours the alignment: the array's own section is 16-byte aligned.
    obj = tmp_path / "model_data.o"
    subprocess.run(["arm-none-eabi-g++", *M4F, "-std=gnu++17", "-fdata-sections", "-Wall",
                    "-Wextra", "-Werror", "-c", str(tmp_path / "model_data.cc"), "-o", str(obj)],
                   check=True)
    sections = subprocess.run(["arm-none-eabi-readelf", "-SW", str(obj)], capture_output=True,
                              text=True, check=True).stdout
    row = next(line for line in sections.splitlines() if ".rodata.tflm_model_data" in line)
    assert row.split()[-1] == "16" and int(row.split()[-6], 16) == len(tiny)


def test_resolver_registers_exactly_the_models_op_types_once(tiny, tmp_path):
    info = tflm_backend.generate(tiny, tmp_path, name="tiny", arena_bytes=1000)
    header = (tmp_path / "tflm_model.h").read_text()
    assert [o.opcode for o in tflm_oracle.read_operators(tiny)] == TINY_OPS == info["ops"]
    registered = re.findall(r"r\.(Add\w+)\(\)", header)
    assert registered == ["AddAdd", "AddReshape", "AddFullyConnected", "AddSoftmax"]
    count = int(re.search(r"#define TFLM_OP_COUNT (\d+)", header).group(1))
    assert count == len(set(TINY_OPS)) == len(registered)
    assert "MicroMutableOpResolver<TFLM_OP_COUNT>" in header
    # the arena is rounded up to TFLM's 16-byte alignment
    assert "#define TFLM_ARENA_BYTES 1008u" in header and info["arena_bytes"] == 1008
    assert re.search(r'TFLM_INPUT_INFO \{"input", MODEL_TENSOR_ACTIVATION, 2, \{16, 1, 0, 0\}, 16u, '
                     r"0\.05\d*f, 3\}", header)
    assert re.search(r'TFLM_OUTPUT_INFO \{"output", MODEL_TENSOR_ACTIVATION, 1, \{4, 0, 0, 0\}, 4u, '
                     r"0\.00390625f, -128\}", header)


def test_resolver_method_names_come_from_the_users_tflm_header(tiny, tmp_path, fake_tflm):
    _lib, root = fake_tflm
    ops = dict(FAKE_OPS, FULLY_CONNECTED="FullyConnectedV9")   # a renamed method in some TFLM
    (root / tflm_backend.RESOLVER_HEADER).write_text(resolver_header(ops))
    methods = tflm_backend.resolver_methods(root)
    assert methods["FULLY_CONNECTED"] == "AddFullyConnectedV9" and len(methods) == len(ops)
    tflm_backend.generate(tiny, tmp_path / "gen", methods=methods)
    assert "r.AddFullyConnectedV9()" in (tmp_path / "gen/tflm_model.h").read_text()


def test_the_real_tflm_header_style_is_parsed(tmp_path):
    text = """
  TfLiteStatus AddMean(const TFLMRegistration& registration = Register_MEAN()) {
    return AddBuiltin(BuiltinOperator_MEAN, registration, ParseReducer);
  }
  TfLiteStatus AddDepthwiseConv2D(
      const TFLMRegistration& registration = Register_DEPTHWISE_CONV_2D()) {
    return AddBuiltin(BuiltinOperator_DEPTHWISE_CONV_2D, registration,
                      ParseDepthwiseConv2D);
  }
  TfLiteStatus AddCustom(const char* name, TFLMRegistration* registration) {
    if (registrations_len_ >= tOpCount) { return kTfLiteError; }
  }
"""
    path = tmp_path / tflm_backend.RESOLVER_HEADER
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert tflm_backend.resolver_methods(tmp_path) == {"MEAN": "AddMean",
                                                      "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D"}


def test_status_codes_agree_with_the_harness():
    source = tflm_backend.MODEL_SOURCE.read_text()
    codes = {int(v): k for k, v in re.findall(r"#define (TFLM_ERR_\w+) (\d+)", source)}
    assert set(codes) == set(tflm_backend.STATUS)
    assert codes[tflm_backend.ARENA_TOO_SMALL] == "TFLM_ERR_ARENA"
    assert codes[tflm_backend.DEBUG_UNSUPPORTED] == "TFLM_ERR_NO_DEBUG"
    assert "not supported by the tflm backend" in tflm_backend.STATUS[tflm_backend.DEBUG_UNSUPPORTED]
    assert "int model_layer_count(void) { return 0; }" in source


# --- finding and checking the user's TFLM ---------------------------------------------------

def test_unset_paths_say_which_variables_and_that_compiled_needs_none(monkeypatch):
    monkeypatch.delenv("TFLM_LIB", raising=False)
    monkeypatch.delenv("TFLM_INCLUDE", raising=False)
    with pytest.raises(UserError) as err:
        tflm_backend.locate("", "")
    msg = str(err.value)
    for words in ("TFLM_LIB and TFLM_INCLUDE", "firmware.tflm_lib", "TFLM's documentation",
                  "compiled backend", "needs none"):
        assert words in msg


def test_env_vars_are_the_fallback_for_empty_config_keys(fake_tflm, monkeypatch):
    lib, root = fake_tflm
    monkeypatch.setenv("TFLM_LIB", str(lib))
    monkeypatch.setenv("TFLM_INCLUDE", str(root))
    kit = tflm_backend.locate("", "")
    assert kit.lib == lib and kit.root == root
    assert root / "third_party/flatbuffers/include" in kit.include_dirs
    # the fake library defines no MicroPrintf: built like TFLM's release build
    assert kit.defines == ["TF_LITE_STATIC_MEMORY", "TF_LITE_STRIP_ERROR_STRINGS"]
    # a config key wins over the environment
    monkeypatch.setenv("TFLM_LIB", str(root / "elsewhere.a"))
    assert tflm_backend.locate(str(lib), "").lib == lib


def test_a_library_with_error_strings_gets_no_strip_define(fake_tflm, tmp_path):
    _lib, root = fake_tflm
    lib = archive(tmp_path, M4F, "liblogs.a", source="void MicroPrintf(const char *f, ...) { (void)f; }\n")
    assert tflm_backend.locate(str(lib), str(root)).defines == ["TF_LITE_STATIC_MEMORY"]


def test_missing_paths_name_the_setting_and_the_path(fake_tflm, monkeypatch, tmp_path):
    lib, root = fake_tflm
    with pytest.raises(UserError, match=r"firmware\.tflm_lib = .*nope\.a: no such file"):
        tflm_backend.locate(str(tmp_path / "nope.a"), str(root))
    monkeypatch.setenv("TFLM_INCLUDE", str(tmp_path / "nodir"))
    with pytest.raises(UserError, match=r"TFLM_INCLUDE = .*nodir: no such directory"):
        tflm_backend.locate(str(lib), "")


def test_a_file_that_is_not_an_archive_is_refused(fake_tflm, tmp_path):
    _lib, root = fake_tflm
    not_lib = tmp_path / "libtensorflow-microlite.a"
    not_lib.write_text("hello\n")
    with pytest.raises(UserError, match="is not a static library"):
        tflm_backend.locate(str(not_lib), str(root))


def test_include_dir_without_tflm_or_third_party_headers_is_refused(fake_tflm):
    lib, root = fake_tflm
    with pytest.raises(UserError, match=r"lacks tensorflow/lite/micro/micro_interpreter\.h.*source root"):
        tflm_backend.locate(str(lib), str(root / "tensorflow"))
    (root / "third_party/flatbuffers/include/flatbuffers/flatbuffers.h").unlink()
    with pytest.raises(UserError, match=r"no flatbuffers/flatbuffers\.h"):
        tflm_backend.locate(str(lib), str(root))
    # ... which a second directory in the list may provide
    fb = root.parent / "fb/flatbuffers"
    fb.mkdir(parents=True)
    (fb / "flatbuffers.h").write_text("// fake\n")
    kit = tflm_backend.locate(str(lib), f"{root}{os.pathsep}{fb.parent}")
    assert fb.parent in kit.include_dirs
    (root / "third_party/gemmlowp/fixedpoint/fixedpoint.h").unlink()
    with pytest.raises(UserError, match=r"no fixedpoint/fixedpoint\.h.*gemmlowp include directory"):
        tflm_backend.locate(str(lib), f"{root}{os.pathsep}{fb.parent}")


def test_library_for_the_boards_core_passes(tmp_path):
    tflm_backend.check_library(archive(tmp_path, M4F), "mps2-an386")
    tflm_backend.check_library(archive(tmp_path, M4F, "libm4.a"), "netduinoplus2")
    # Armv7E-M code runs on the Armv8.1-M Cortex-M55, same float ABI
    tflm_backend.check_library(archive(tmp_path, M4F, "libm4b.a"), "mps3-an547")
    tflm_backend.check_library(archive(tmp_path, ["-mcpu=cortex-m3", "-mthumb"], "libm3.a"),
                               "lm3s6965evb")


def test_library_for_another_core_is_refused(tmp_path):
    m55 = archive(tmp_path, ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"])
    with pytest.raises(UserError) as err:
        tflm_backend.check_library(m55, "mps2-an386")
    msg = str(err.value)
    assert "does not fit mps2-an386" in msg and "v8.1-M.mainline" in msg and "v7E-M" in msg
    assert "-mcpu=cortex-m4" in msg and "TFLM's documentation" in msg


def test_library_with_another_float_abi_is_refused(tmp_path):
    soft = archive(tmp_path, ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"])
    with pytest.raises(UserError, match=r"float ABI is soft \(-mfloat-abi\), the board's hard"):
        tflm_backend.check_library(soft, "mps2-an386")
    # on the FPU-less Cortex-M3 the core is named first: the M4F code would not run there
    with pytest.raises(UserError, match=r"built for 7E-M \(Armv7E-M, hard-float.*the board is "
                                        r"7-M \(Armv7, soft-float, no FPU\)"):
        tflm_backend.check_library(archive(tmp_path, M4F, "libhard.a"), "lm3s6965evb")


def test_library_built_for_the_host_is_refused(tmp_path):
    host = archive(tmp_path, [], "libhost.a", gcc="gcc", ar="ar")
    with pytest.raises(UserError, match="not for a 32-bit Arm core"):
        tflm_backend.check_library(host, "mps2-an386")


def test_an_op_the_users_tflm_cannot_register_is_named(tiny, fake_tflm):
    _lib, root = fake_tflm
    (root / tflm_backend.RESOLVER_HEADER).write_text(
        resolver_header({k: v for k, v in FAKE_OPS.items() if k != "SOFTMAX"}))
    with pytest.raises(UserError) as err:
        tflm_backend.resolver_ops(tiny, tflm_backend.resolver_methods(root), where=str(root))
    msg = str(err.value)
    assert "uses SOFTMAX" in msg and "no Add method" in msg and "compiled backend" in msg


def test_build_checks_everything_before_compiling(tiny, fake_tflm, tmp_path):
    lib, root = fake_tflm
    with pytest.raises(UserError, match="arena_margin = 8"):
        tflm_backend.build(tiny, "mps2-an386", tmp_path / "out", tflm_lib=str(lib),
                           tflm_include=str(root), arena_margin=8)
    soft = archive(tmp_path, ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"], "libsoft.a")
    with pytest.raises(UserError, match="float ABI"):
        tflm_backend.build(tiny, "mps2-an386", tmp_path / "out", tflm_lib=str(soft),
                           tflm_include=str(root))
    (root / tflm_backend.RESOLVER_HEADER).write_text(resolver_header({"ADD": "Add"}))
    with pytest.raises(UserError, match="uses RESHAPE, FULLY_CONNECTED, SOFTMAX"):
        tflm_backend.build(tiny, "mps2-an386", tmp_path / "out", tflm_lib=str(lib),
                           tflm_include=str(root))
    assert not (tmp_path / "out").exists()


def test_the_image_is_sized_for_the_input_and_grows_its_margin_until_it_starts(fake_tflm, tmp_path,
                                                                                monkeypatch):
    """An image input larger than the default 4 KB frame gets frames that carry one (the
    compiled back end's harness sizing), and when the arena measured plus the margin does
    not allocate (arena_used_bytes() leaves out what allocation needs for a moment), the
    margin doubles until the image starts; the figure that worked is cached."""
    lib, root = fake_tflm
    model = tiny_model(6000)
    needs, used = 19_000, 15_828            # this fake interpreter's real need, and what it reports
    built = []

    def compile_(board, kit, gen, extra, elf, defines):
        header = (gen / "tflm_model.h").read_text()
        built.append((int(re.search(r"TFLM_ARENA_BYTES (\d+)u", header).group(1)), defines))
        elf.parent.mkdir(parents=True, exist_ok=True)
        elf.write_bytes(b"elf")
        return elf

    def boot(board, elf):
        arena = built[-1][0]
        return (tflm_backend.MODEL_OK, used) if arena >= needs else (tflm_backend.ARENA_TOO_SMALL, 0)

    monkeypatch.setattr(tflm_backend, "_compile", compile_)
    monkeypatch.setattr(tflm_backend, "_boot", boot)
    monkeypatch.setattr(tflm_backend.boards, "size_report", lambda elf: {})
    out = tmp_path / "out"
    info = tflm_backend.build(model, "mps2-an386", out, tflm_lib=str(lib), tflm_include=str(root),
                              arena_margin=1024, monitor=False)["model"]
    probe = built[0][0]
    # probe, then used + 1024, + 2048, + 4096 (rounded up to 16 bytes; 19,936 >= 19,000)
    assert probe >= needs and [a for a, _ in built[1:]] == [16_864, 17_888, 19_936]
    assert (info["arena_used"], info["arena_margin"], info["arena_bytes"]) == (used, 4096, 19_936)
    assert json.loads((out / tflm_backend.CACHE_FILE).read_text())["extra"] == 3072
    defines = built[-1][1]
    assert "PROTO_MAX_PAYLOAD=6144u" in defines and "MONITOR_MAX_WINDOW=1u" in defines
    built.clear()   # the same build again: the cached figure boots first time
    tflm_backend.build(model, "mps2-an386", out, tflm_lib=str(lib), tflm_include=str(root),
                       arena_margin=1024, monitor=False)
    assert [a for a, _ in built] == [19_936]


def test_link_errors_are_explained(fake_tflm):
    lib, root = fake_tflm
    kit = tflm_backend.locate(str(lib), str(root))
    board = boards.load("mps2-an386")
    link = "linking firmware.elf for mps2-an386 failed; fix the errors below and build again:\n"
    vfp = UserError(link + "ld: error: main.o uses VFP register arguments, libx.a(conv.o) does not")
    assert "another float ABI" in str(tflm_backend._explain(vfp, kit, board))
    kernel = UserError(link + "undefined reference to `tflite::Register_MEAN()'")
    assert "has no MEAN kernel" in str(tflm_backend._explain(kernel, kit, board))
    other = UserError(link + "undefined reference to `tflite::MicroInterpreter::Invoke()'")
    assert "different TFLM versions" in str(tflm_backend._explain(other, kit, board))
    header = UserError("compiling tflm_model.cc for mps2-an386 failed; fix the errors below and "
                       "build again:\ncommon.h:33:10: fatal error: ruy/profiler/x.h: No such file "
                       "or directory")
    assert "ruy/profiler/x.h, which TFLM's headers include, is not under TFLM_INCLUDE" in \
        str(tflm_backend._explain(header, kit, board))
    unrelated = UserError(link + "undefined reference to `selftest_input'")
    assert tflm_backend._explain(unrelated, kit, board) is unrelated


# --- boards/build.py: prebuilt libraries and third-party headers ----------------------------

@pytest.mark.slow
def test_compile_firmware_links_a_static_library_and_quiets_system_headers(tmp_path):
    board = boards.load("mps2-an386")
    lib = archive(tmp_path, list(board.cflags), "libanswer.a",
                  source="int lib_answer(void) { return 7; }\n")
    third = tmp_path / "third"
    third.mkdir()
    # an unused parameter: a warning under -Wextra, which -Werror would make fatal
    (third / "noisy.h").write_text("static inline int noisy(int unused) { return 0; }\n")
    main = tmp_path / "main.c"
    main.write_text('#include "board.h"\n#include "noisy.h"\nint lib_answer(void);\n'
                    "int main(void) { board_init(); board_exit(lib_answer() + noisy(0)); }\n")
    with pytest.raises(UserError, match="library .*missing.a does not exist"):
        boards.compile_firmware(board, [main], [], tmp_path / "x.elf", libs=[tmp_path / "missing.a"],
                                system_include_dirs=[third])
    elf = boards.compile_firmware(board, [main], [], tmp_path / "answer.elf", libs=[lib],
                                  system_include_dirs=[third])
    with boards.Emulator(board, elf) as emu:
        link = serial.serial_for_url(emu.url, timeout=10)
        try:
            assert emu.wait(timeout=10) == 7
        finally:
            link.close()


# --- the real thing, when a TFLM build is at hand ---------------------------------------------

HAVE_TFLM = bool(os.environ.get("TFLM_LIB") and os.environ.get("TFLM_INCLUDE"))


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TFLM, reason="set TFLM_LIB and TFLM_INCLUDE to a TFLM build for "
                                          "Cortex-M4F (hard float) to run the TFLM firmware")
def test_tflm_firmware_is_bit_exact_to_the_tflm_host_runtime(smoke_build, smoke_tflite, tmp_path):
    from runner.link import Device, DeviceError
    from tests.conftest import smoke_vectors
    q, ref = smoke_vectors(smoke_build, smoke_tflite, 100)

    built = tflm_backend.build(smoke_tflite, "mps2-an386", tmp_path, name="smoke_drsn")
    model = built["model"]
    assert model["backend"] == "tflm" and model["arena_measured_with"] > model["arena_used"] > 0
    # used + the default margin, rounded up to TFLM's 16-byte alignment
    assert 0 <= model["arena_bytes"] - (model["arena_used"] + 1024) < 16
    assert model["arena_bytes"] % 16 == 0
    with boards.Emulator("mps2-an386", built["elf"]) as emu, Device(emu.url, timeout=10.0) as dev:
        info = dev.info()
        assert info.model_hash == bytes.fromhex(model["sha256"]) and info.model_status == 0
        assert info.arena_bytes == model["arena_used"] and info.layer_count == 0
        out, work = dev.infer(q)
        with pytest.raises(DeviceError) as err:
            dev.debug(q[0])
        assert err.value.detail == tflm_backend.DEBUG_UNSUPPORTED
    mismatches = int(np.sum(np.any(out.reshape(len(q), -1) != np.array(ref), axis=1)))
    print(f"tflm on mps2-an386: {len(q)} vectors, {mismatches} mismatches, "
          f"{int(np.median(work))} instructions per inference, arena {model['arena_used']} B, "
          f"text {built['size']['text']} B, rodata {built['size']['rodata']} B")
    assert mismatches == 0

    # The same model and library again: the cached measurement saves the probe build.
    again = tflm_backend.build(smoke_tflite, "mps2-an386", tmp_path, name="smoke_drsn")
    assert again["model"]["arena_measured_with"] is None
    assert again["model"]["arena_used"] == model["arena_used"]
