"""Each kernel parameter struct is described once (firmware_gen/params.py, firmware_gen/ops):
the committed dk_params.h, the ctypes mirrors and the designated initializers of the generated
C all come from that description, and the C compiler agrees with them. Every registered op
unit names kernel files and tests that exist."""

import ast
import ctypes
import random
import subprocess
from pathlib import Path

import pytest

from firmware_gen import hostlib, ops, params
from firmware_gen.codegen import SUPPORTED

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "firmware_gen" / "runtime" / "kernels"
STRUCTS = params.structs()


def test_dk_params_h_is_generated_from_the_descriptions():
    assert params.HEADER.read_text() == params.header_text(), \
        "dk_params.h is stale: run `python -m firmware_gen.params`"


def test_dk_h_declares_no_parameter_struct_by_hand():
    dk_h = (params.HEADER.parent / "dk.h").read_text()
    assert '#include "dk_params.h"' in dk_h
    assert "typedef struct" not in dk_h


def _compile_and_run(tmp_path, source: str) -> str:
    (tmp_path / "probe.c").write_text(source)
    exe = tmp_path / "probe"
    proc = subprocess.run([hostlib.CC, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{hostlib.INCLUDE_DIR}",
                           str(tmp_path / "probe.c"), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_ctypes_mirrors_have_the_c_compilers_layout(tmp_path):
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "dk.h"', "int main(void) {"]
    for s in STRUCTS:
        lines.append(f'    printf("{s.name} sizeof %zu\\n", sizeof({s.name}));')
        for f in s.fields:
            lines.append(f'    printf("{s.name} {f.name} %zu\\n", offsetof({s.name}, {f.name}));')
        for a in s.asm_offsets:   # the published assembly offsets, as the compiler sees them
            lines.append(f'    printf("{s.name} macro:{a} %d\\n", {params.asm_macro(s, a)});')
    lines += ["    return 0;", "}"]
    got = {}
    for row in _compile_and_run(tmp_path, "\n".join(lines)).splitlines():
        name, key, value = row.split()
        got[(name, key)] = int(value)
    assert len(STRUCTS) >= 20
    for s in STRUCTS:
        assert got[(s.name, "sizeof")] == ctypes.sizeof(s.ctype), s.name
        for f, off in s.offsets().items():
            assert got[(s.name, f)] == off, f"{s.name}.{f}"
        for a in s.asm_offsets:
            assert got[(s.name, f"macro:{a}")] == got[(s.name, a)]


def _random_values(struct: params.Struct, rng: random.Random) -> dict:
    values = {}
    for f in struct.fields:
        if isinstance(f.type, params.Struct):
            values[f.name] = _random_values(f.type, rng)
        elif f.length:
            values[f.name] = [rng.randint(-2**31, 2**31 - 1) for _ in range(f.length)]
        else:
            bits = 63 if f.type == "int64_t" else 31
            values[f.name] = rng.randint(-2**bits + 1, 2**bits - 1)   # + 1: -2^63 is no C literal
    return values


def test_designated_initializers_give_the_bytes_of_the_ctypes_struct(tmp_path):
    """What codegen prints and what the host tests pass to the kernels are the same struct."""
    rng = random.Random(15)
    plain = [s for s in STRUCTS if not s._has_pointer()]
    lines = ['#include <stdio.h>', '#include "dk.h"']
    expected = {}
    for s in plain:
        values = _random_values(s, rng)
        lines.append(f"static const {s.name} v_{s.name} = {s.init(values, indent=0)};")
        expected[s.name] = bytes(s.make(values))
    lines.append("static void dump(const char *name, const void *p, size_t n)\n{\n"
                 "    printf(\"%s \", name);\n"
                 "    for (size_t i = 0; i < n; i++) printf(\"%02x\", ((const unsigned char *)p)[i]);\n"
                 "    printf(\"\\n\");\n}")
    lines.append("int main(void) {")
    lines += [f'    dump("{s.name}", &v_{s.name}, sizeof v_{s.name});' for s in plain]
    lines += ["    return 0;", "}"]
    got = dict(row.split() for row in _compile_and_run(tmp_path, "\n".join(lines)).splitlines())
    for s in plain:
        assert bytes.fromhex(got[s.name]) == expected[s.name], s.name


def test_initializer_is_one_line_when_short_and_one_field_per_line_otherwise():
    short = params.REQUANT.init({"multiplier": 1073741824, "shift": -3})
    assert short == "{ .multiplier = 1073741824, .shift = -3 }"
    conv = ops.conv1d.CONV1D_PARAMS.init(
        {"input_offset": 1, "output_offset": -2, "in_w": 3, "in_c": 4, "out_w": 5, "out_c": 6, "kernel": 7,
         "stride": 8, "pad": 9, "taps": 10, "activation": {"min": -128, "max": 127}, "small_acc": 1, "block": 16,
         "weights8": 0},
        indent=8)
    rows = conv.splitlines()
    assert rows[0] == "{" and rows[-1] == "        }" and rows[1] == "            .input_offset = 1,"
    with pytest.raises(KeyError, match="output_offset"):
        ops.conv1d.CONV1D_PARAMS.init({"input_offset": 1})


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_op_unit_has_its_kernel_files_and_kernel_tests():
    units = list(ops.REGISTRY.values()) + list(ops.FUSIONS)
    assert set(ops.REGISTRY) == SUPPORTED and len(SUPPORTED) >= 28
    for unit in units:
        name = getattr(unit, "opcode", None) or unit.kind
        assert unit.kernels, name
        for kernel in unit.kernels:
            assert (KERNELS / kernel).is_file(), f"{name}: no kernel file {kernel}"
        assert unit.tests, f"{name} names no test"
        for test in unit.tests:
            file, func = test.split("::")
            assert func in _test_functions(ROOT / file), f"{name}: no test {test}"


def test_every_kernel_file_belongs_to_an_op_unit():
    claimed = {k for unit in list(ops.REGISTRY.values()) + list(ops.FUSIONS) for k in unit.kernels}
    shared = {"fixedpoint.c", "preprocess.c"}   # primitives; the raw-input preprocessing (not an op)
    assert {p.name for p in KERNELS.glob("*.c")} == claimed | shared


def test_host_signatures_come_from_the_prototypes_of_dk_h():
    sigs = hostlib.signatures()
    assert len(sigs) >= 38
    assert sigs["dk_avgpool_s8"][0] is ctypes.c_int32 and sigs["dk_maxpool_s8"][0] is None
    assert sigs["dk_conv_s8"][1][:2] == [ctypes.POINTER(ops.conv.CONV_PARAMS.ctype),
                                          ctypes.POINTER(params.CHANNEL_REQUANT.ctype)]
    assert sigs["dk_lut_s8"][1][0] == ctypes.POINTER(ctypes.c_int8)            # int8_t table[256]
    assert sigs["dk_concat_s8"][1][2] == ctypes.POINTER(ctypes.POINTER(ctypes.c_int8))
    lib = hostlib.load()
    for name, (restype, argtypes) in sigs.items():
        assert getattr(lib, name).argtypes == argtypes, name


@pytest.mark.parametrize("dataclass_name,struct", [
    ("AddParams", "dk_add_params"), ("MulParams", "dk_mul_params"), ("AbsParams", "dk_abs_params"),
    ("ReluParams", "dk_relu_params"), ("RequantizeParams", "dk_requantize_params"),
    ("LogisticParams", "dk_logistic_params"), ("SoftmaxParams", "dk_softmax_params"),
    ("MeanParams", "dk_mean_params"), ("PoolParams", "dk_pool_params"), ("BroadcastPlan", "dk_broadcast"),
    ("ChannelQuant", "dk_fc_params"), ("Requant", "dk_requant"), ("Activation", "dk_activation")])
def test_quant_dataclasses_carry_the_field_names_of_their_struct(dataclass_name, struct):
    """Struct.make / Struct.init read a prepare's result by field name."""
    import dataclasses

    from firmware_gen import quant
    names = {f.name for f in dataclasses.fields(getattr(quant, dataclass_name))}
    assert {f.name for f in params.by_name(struct).fields} <= names
