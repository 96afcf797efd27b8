"""Run the dk int8 kernels on the host.

``load()`` compiles every C file under ``runtime/kernels`` with the host gcc
into one shared library (cached under the system temp directory, keyed by a
hash of the sources and flags) and the functions below wrap each kernel for
numpy arrays and the parameter dataclasses of :mod:`firmware_gen.quant`.
Tests use them to prove the kernels bit-exact against TFLM; the code
generator can use them to tabulate unary operators (``unary_lut``).

Two builds exist: "portable" (the plain C every kernel falls back to on a
core without the DSP extension) and "dsp" (-DDK_EMULATE_DSP: the DSP
variants of the optimised kernels, with dk_acle.h's exact C emulations of
SMLAD, SXTB16, SMMULR...). ``use_variant("dsp")`` switches every wrapper
below to the second, so the same tests run against both.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from ctypes import POINTER, c_int32, c_int8
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from firmware_gen import ops, quant
from firmware_gen import params as desc

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
INCLUDE_DIR = RUNTIME_DIR / "include"
KERNEL_DIR = RUNTIME_DIR / "kernels"
CC = os.environ.get("DK_HOST_CC", "gcc")
CFLAGS = ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")

VARIANTS = {"portable": (), "dsp": ("-DDK_EMULATE_DSP",)}
_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL] = {}
_active = threading.local()


class HostBuildError(RuntimeError):
    """The kernel library did not compile."""


def _sources() -> list[Path]:
    return sorted(KERNEL_DIR.glob("*.c"))


def _build_key(variant: str = "portable") -> str:
    h = hashlib.sha256()
    h.update(CC.encode())
    h.update(" ".join(CFLAGS + VARIANTS[variant]).encode())
    for path in sorted(KERNEL_DIR.glob("*.[ch]")) + sorted(INCLUDE_DIR.glob("*.h")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(cache_dir: Path | None = None, variant: str = "portable") -> Path:
    """Compile the kernels (if not cached) and return the library path."""
    cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "drsn-edge-hostlib")
    lib_path = cache_dir / f"libdk-{variant}-{_build_key(variant)}.so"
    if lib_path.exists():
        return lib_path
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build under a private name, then rename: concurrent builders never see
    # a half-written library.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache_dir)
    os.close(fd)
    cmd = [CC, *CFLAGS, *VARIANTS[variant], f"-I{INCLUDE_DIR}", f"-I{KERNEL_DIR}",
           *map(str, _sources()), "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise HostBuildError(f"{' '.join(cmd)}\n{proc.stderr}")
    os.replace(tmp, lib_path)
    return lib_path


# ------------------------------------------------------------ C structs ----


_I8P = POINTER(c_int8)
_I32P = POINTER(c_int32)

# The ctypes mirrors of the parameter structs come from their one description
# (firmware_gen/params.py and the op units of firmware_gen/ops), and the functions'
# argument types from their prototypes in dk.h (signatures()); tests/test_params.py checks
# the structs' layout against gcc's.
_SCALAR_ARGS = {"int32_t": c_int32, "uint32_t": ctypes.c_uint32, "float": ctypes.c_float,
                "int8_t": c_int8, "int16_t": ctypes.c_int16}
_PROTOTYPE = re.compile(r"^(void|int32_t)\s+(dk_\w+)\s*\(([^)]*)\)\s*;", re.M)


def _arg_type(decl: str):
    """The ctypes type of one C parameter declaration of dk.h, e.g. `const dk_dims *input_dims`,
    `const int8_t table[256]`, `const int8_t *const *inputs`."""
    text = re.sub(r"\bconst\b", " ", decl)
    pointers = text.count("*") + text.count("[")
    words = re.sub(r"\[\w*\]|\*", " ", text).split()
    base = words[0]
    t = _SCALAR_ARGS[base] if base in _SCALAR_ARGS else desc.by_name(base).ctype
    for _ in range(pointers):
        t = POINTER(t)
    return t


def signatures(header: Path = INCLUDE_DIR / "dk.h") -> dict[str, tuple]:
    """name -> (restype, argtypes) of every kernel dk.h declares."""
    text = re.sub(r"/\*.*?\*/", " ", header.read_text(), flags=re.S)
    out = {}
    for ret, name, args in _PROTOTYPE.findall(text):
        decls = [d.strip() for d in args.split(",") if d.strip() not in ("", "void")]
        out[name] = (None if ret == "void" else c_int32, [_arg_type(d) for d in decls])
    return out


def load(variant: str | None = None) -> ctypes.CDLL:
    """Build (if needed) and load the kernel library once per process (the variant
    use_variant() chose, "portable" unless told otherwise)."""
    variant = variant or getattr(_active, "name", "portable")
    with _lock:
        if variant not in _libs:
            lib = ctypes.CDLL(str(build(variant=variant)))
            for name, (restype, argtypes) in signatures().items():
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _libs[variant] = lib
    return _libs[variant]


@contextmanager
def use_variant(name: str):
    """Run the wrappers of this module against the "portable" or the "dsp" build."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; one of {', '.join(VARIANTS)}")
    previous = getattr(_active, "name", "portable")
    _active.name = name
    try:
        yield
    finally:
        _active.name = previous


# -------------------------------------------------------------- helpers ----


def _i8(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype != np.int8:
        raise TypeError(f"expected int8 data, got {a.dtype}")
    return a


def _ptr8(a: np.ndarray):
    return a.ctypes.data_as(_I8P)


def _ptr32(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(_I32P)


def _dims(shape: Sequence[int]) -> ctypes.Structure:
    return desc.DIMS.make(desc.dims(shape))


def _channel_requant(q: quant.ChannelQuant):
    mult = np.ascontiguousarray(q.multipliers, dtype=np.int32)
    shift = np.ascontiguousarray(q.shifts, dtype=np.int32)
    # The arrays must outlive the call: return them alongside the struct.
    return (desc.CHANNEL_REQUANT.make(multiplier=_ptr32(mult), shift=_ptr32(shift), per_channel=q.per_channel),
            (mult, shift))


def _bias(bias) -> np.ndarray | None:
    return None if bias is None else np.ascontiguousarray(bias, dtype=np.int32)


# ------------------------------------------------------ fixed point -------


def _vectorize(fn: Callable, *args) -> np.ndarray:
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=np.int64) for a in args])
    out = np.empty(arrays[0].shape, dtype=np.int64)
    for idx in np.ndindex(out.shape):
        out[idx] = fn(*(int(a[idx]) for a in arrays))
    return out


def sat_rounding_doubling_high_mul(a, b) -> np.ndarray:
    return _vectorize(load().dk_fx_sat_rounding_doubling_high_mul, a, b)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    return _vectorize(load().dk_fx_rounding_divide_by_pot, x, exponent)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    return _vectorize(load().dk_fx_multiply_by_quantized_multiplier,
                      x, multiplier, shift)


def exp_on_negative_values(a, integer_bits) -> np.ndarray:
    return _vectorize(load().dk_fx_exp_on_negative_values, a, integer_bits)


def one_over_one_plus_x(a) -> np.ndarray:
    return _vectorize(load().dk_fx_one_over_one_plus_x, a)


def logistic_fixed(a, integer_bits) -> np.ndarray:
    return _vectorize(load().dk_fx_logistic, a, integer_bits)


# --------------------------------------------------------------- kernels ---


def conv(x, weights, bias, q: quant.ChannelQuant, stride=(1, 1),
         padding="SAME", dilation=(1, 1)) -> np.ndarray:
    """CONV_2D on NHWC ``x`` with OHWI ``weights``."""
    x, w = _i8(x), _i8(weights)
    b = _bias(bias)
    n, ih, iw, _ = x.shape
    oc, kh, kw, _ = w.shape
    oh, pad_h = quant.conv_output_size(ih, kh, stride[0], dilation[0], padding)
    ow, pad_w = quant.conv_output_size(iw, kw, stride[1], dilation[1], padding)
    out = np.zeros((n, oh, ow, oc), dtype=np.int8)
    params = ops.conv.CONV_PARAMS.make(q, stride_h=stride[0], stride_w=stride[1], pad_h=pad_h,
                                       pad_w=pad_w, dilation_h=dilation[0], dilation_w=dilation[1])
    cq, keep = _channel_requant(q)
    load().dk_conv_s8(ctypes.byref(params), ctypes.byref(cq),
                      ctypes.byref(_dims(x.shape)), _ptr8(x),
                      ctypes.byref(_dims(w.shape)), _ptr8(w), _ptr32(b),
                      ctypes.byref(_dims(out.shape)), _ptr8(out))
    return out


def transpose_conv(x, weights, bias, q: quant.ChannelQuant, geo: dict, out_shape) -> np.ndarray:
    """TRANSPOSE_CONV on NHWC ``x`` with OHWI ``weights`` (geo: stride/pad as ops.transpose_conv)."""
    x, w = _i8(x), _i8(weights)
    b = _bias(bias)
    out = np.zeros(out_shape, dtype=np.int8)
    params = ops.conv.CONV_PARAMS.make(q, **geo)
    cq, keep = _channel_requant(q)
    load().dk_transpose_conv_s8(ctypes.byref(params), ctypes.byref(cq),
                                ctypes.byref(_dims(x.shape)), _ptr8(x),
                                ctypes.byref(_dims(w.shape)), _ptr8(w), _ptr32(b),
                                ctypes.byref(_dims(out.shape)), _ptr8(out))
    return out


def depthwise_conv(x, weights, bias, q: quant.ChannelQuant, depth_multiplier=1,
                   stride=(1, 1), padding="SAME", dilation=(1, 1)) -> np.ndarray:
    """DEPTHWISE_CONV_2D on NHWC ``x`` with [1, kh, kw, out_c] ``weights``."""
    x, w = _i8(x), _i8(weights)
    b = _bias(bias)
    n, ih, iw, _ = x.shape
    _, kh, kw, oc = w.shape
    oh, pad_h = quant.conv_output_size(ih, kh, stride[0], dilation[0], padding)
    ow, pad_w = quant.conv_output_size(iw, kw, stride[1], dilation[1], padding)
    out = np.zeros((n, oh, ow, oc), dtype=np.int8)
    params = ops.conv.CONV_PARAMS.make(q, stride_h=stride[0], stride_w=stride[1], pad_h=pad_h,
                                       pad_w=pad_w, dilation_h=dilation[0], dilation_w=dilation[1])
    cq, keep = _channel_requant(q)
    load().dk_depthwise_conv_s8(ctypes.byref(params), ctypes.byref(cq),
                                depth_multiplier, ctypes.byref(_dims(x.shape)),
                                _ptr8(x), ctypes.byref(_dims(w.shape)), _ptr8(w),
                                _ptr32(b), ctypes.byref(_dims(out.shape)),
                                _ptr8(out))
    return out


def fully_connected(x, weights, bias, q: quant.ChannelQuant) -> np.ndarray:
    """FULLY_CONNECTED: ``x`` is [..., depth], ``weights`` [out, depth];
    returns [batches, out] with batches = x.size // depth."""
    x, w = _i8(x), _i8(weights)
    b = _bias(bias)
    out_depth, depth = w.shape
    batches = x.size // depth
    out = np.zeros((batches, out_depth), dtype=np.int8)
    params = ops.fully_connected.FC_PARAMS.make(q)
    cq, keep = _channel_requant(q)
    load().dk_fully_connected_s8(ctypes.byref(params), ctypes.byref(cq), batches,
                                 depth, out_depth, _ptr8(x), _ptr8(w), _ptr32(b),
                                 _ptr8(out))
    return out


def _binary(name: str, params, a, b) -> np.ndarray:
    a, b = _i8(a), _i8(b)
    plan = quant.broadcast_plan(a.shape, b.shape)
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.int8)
    bc = desc.BROADCAST.make(plan)
    fn = getattr(load(), name)
    if params is None:
        fn(ctypes.byref(bc), _ptr8(a), _ptr8(b), _ptr8(out))
    else:
        fn(ctypes.byref(params), ctypes.byref(bc), _ptr8(a), _ptr8(b), _ptr8(out))
    return out


def _add_struct(p: quant.AddParams) -> ctypes.Structure:
    return ops.add.ADD_PARAMS.make(p)


def add(a, b, p: quant.AddParams) -> np.ndarray:
    return _binary("dk_add_s8", _add_struct(p), a, b)


def sub(a, b, p: quant.AddParams) -> np.ndarray:
    return _binary("dk_sub_s8", _add_struct(p), a, b)


def mul(a, b, p: quant.MulParams) -> np.ndarray:
    return _binary("dk_mul_s8", ops.mul.MUL_PARAMS.make(p), a, b)


def squared_difference(a, b, p: dict) -> np.ndarray:
    """SQUARED_DIFFERENCE with the parameters of ops.squared_difference.prepare."""
    return _binary("dk_squared_difference_s8", ops.squared_difference.SQUARED_DIFFERENCE_PARAMS.make(p), a, b)


def minimum(a, b) -> np.ndarray:
    return _binary("dk_minimum_s8", None, a, b)


def maximum(a, b) -> np.ndarray:
    return _binary("dk_maximum_s8", None, a, b)


def _unary(name: str, params, x) -> np.ndarray:
    x = _i8(x)
    out = np.zeros_like(x)
    fn = getattr(load(), name)
    fn(ctypes.byref(params), _ptr8(x), _ptr8(out), x.size)
    return out


def abs_(x, p: quant.AbsParams) -> np.ndarray:
    return _unary("dk_abs_s8", ops.abs.ABS_PARAMS.make(p), x)


def relu(x, p: quant.ReluParams) -> np.ndarray:
    return _unary("dk_relu_s8", ops.relu.RELU_PARAMS.make(p), x)


def requantize(x, p: quant.RequantizeParams) -> np.ndarray:
    return _unary("dk_requantize_s8", ops.requantize.REQUANTIZE_PARAMS.make(p), x)


def requantize_u8_s8(x, p: quant.RequantizeParams) -> np.ndarray:
    """uint8 -> int8 (QUANTIZE of the model's uint8 input)."""
    x = np.ascontiguousarray(x, np.uint8)
    return _unary("dk_requantize_u8_s8", ops.requantize.REQUANTIZE_PARAMS.make(p), x.view(np.int8))


def requantize_s8_u8(x, p: quant.RequantizeParams) -> np.ndarray:
    """int8 -> uint8 (QUANTIZE writing the model's uint8 output)."""
    return _unary("dk_requantize_s8_u8", ops.requantize.REQUANTIZE_PARAMS.make(p), x).view(np.uint8)


def quantize(x, scale: float, zero_point: int) -> np.ndarray:
    """float32 -> int8 (QUANTIZE of the model's float32 input)."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.zeros(x.shape, np.int8)
    p = ops.quantize.QUANTIZE_PARAMS.make({"scale": scale, "zero_point": zero_point})
    load().dk_quantize_f32_s8(ctypes.byref(p), _ptr8(x.view(np.int8)), _ptr8(out), x.size)
    return out


def dequantize(x, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float32 (DEQUANTIZE)."""
    x = _i8(x)
    out = np.zeros(x.shape, np.float32)
    p = ops.dequantize.DEQUANTIZE_PARAMS.make({"scale": scale, "zero_point": zero_point})
    load().dk_dequantize_s8_f32(ctypes.byref(p), _ptr8(x), _ptr8(out.view(np.int8)), x.size)
    return out


def resize_nearest(x, q: dict) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR of NHWC int8 x with the parameters of ops.resize.prepare."""
    x = _i8(x)
    out = np.zeros((q["batches"], q["output_height"], q["output_width"], q["depth"]), np.int8)
    rows = np.ascontiguousarray(q["row_index"], np.int32)
    cols = np.ascontiguousarray(q["col_index"], np.int32)
    p = ops.resize.RESIZE_PARAMS.make(q, rows=rows.ctypes.data_as(_I32P), cols=cols.ctypes.data_as(_I32P))
    load().dk_resize_nearest_s8(ctypes.byref(p), _ptr8(x), _ptr8(out))
    return out


def resize_bilinear(x, q: dict) -> np.ndarray:
    """RESIZE_BILINEAR of NHWC int8 x with the parameters of ops.resize_bilinear.prepare."""
    x = _i8(x)
    out = np.zeros((q["batches"], q["output_height"], q["output_width"], q["depth"]), np.int8)
    rows = np.ascontiguousarray(q["row_table"], np.int32)
    cols = np.ascontiguousarray(q["col_table"], np.int32)
    p = ops.resize_bilinear.RESIZE_BILINEAR_PARAMS.make(q, rows=rows.ctypes.data_as(_I32P),
                                                        cols=cols.ctypes.data_as(_I32P))
    load().dk_resize_bilinear_s8(ctypes.byref(p), _ptr8(x), _ptr8(out))
    return out


def reduce_max(x, outer: int, reduce: int, inner: int) -> np.ndarray:
    """REDUCE_MAX of int8 x viewed as [outer, reduce, inner] -> [outer * inner]."""
    x = _i8(x)
    out = np.zeros(outer * inner, np.int8)
    load().dk_reduce_max_s8(outer, reduce, inner, _ptr8(x), _ptr8(out))
    return out


def strided_slice(x, q: dict, out_shape) -> np.ndarray:
    """STRIDED_SLICE of int8 x with the plan of ops.strided_slice.prepare."""
    x = _i8(x)
    out = np.zeros(out_shape, np.int8)
    load().dk_strided_slice_s8(ctypes.byref(ops.strided_slice.STRIDED_SLICE_PARAMS.make(q)), _ptr8(x),
                               _ptr8(out))
    return out


def index_map(x, dims, tables, out_shape) -> np.ndarray:
    """GATHER / MIRROR_PAD of int8 x with the index map of ops.gather.prepare or
    ops.mirror_pad.prepare (merged to four axes as the generator does)."""
    x = _i8(x)
    dims, tables = ops.gather.merged(list(dims), list(tables))
    offsets = np.ascontiguousarray([v for t in tables for v in t], dtype=np.int32)
    out = np.zeros(out_shape, np.int8)
    load().dk_index_map_s8(ctypes.byref(ops.gather.INDEX_MAP_PARAMS.make(
        {"dims": dims, "offsets": _ptr32(offsets)})), _ptr8(x), _ptr8(out))
    return out


def space_to_batch(x, p: dict) -> np.ndarray:
    """SPACE_TO_BATCH_ND of int8 x with the parameters of ops.space_batch.space_to_batch."""
    x = _i8(x)
    out = np.zeros(int(np.prod(p["output_dims"])), np.int8)
    load().dk_space_to_batch_s8(ctypes.byref(ops.space_batch.SPACE_TO_BATCH_PARAMS.make(p)),
                                _ptr8(x), _ptr8(out))
    return out


def l2_normalization(x, zero_point: int) -> np.ndarray:
    """L2_NORMALIZATION of int8 x over its last axis."""
    x = _i8(x)
    out = np.zeros(x.shape, np.int8)
    depth = int(x.shape[-1])
    load().dk_l2_normalization_s8(int(zero_point), int(x.size // depth), depth, _ptr8(x), _ptr8(out))
    return out


def logistic(x, p: quant.LogisticParams) -> np.ndarray:
    return _unary("dk_logistic_s8", ops.logistic.LOGISTIC_PARAMS.make(p), x)


def lut(x, table) -> np.ndarray:
    x = _i8(x)
    table = _i8(table)
    if table.shape != (256,):
        raise ValueError("a LUT has 256 entries")
    out = np.zeros_like(x)
    load().dk_lut_s8(_ptr8(table), _ptr8(x), _ptr8(out), x.size)
    return out


def copy(x) -> np.ndarray:
    x = _i8(x)
    out = np.zeros_like(x)
    load().dk_copy_s8(_ptr8(x), _ptr8(out), x.size)
    return out


# Every int8 value, ordered by bit pattern: entry k is the input (int8)k.
LUT_INPUTS = np.arange(256, dtype=np.uint8).view(np.int8)


def unary_lut(kernel: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Tabulate an int8 -> int8 kernel for dk_lut_s8, e.g.
    ``unary_lut(lambda x: logistic(x, params))``."""
    table = np.asarray(kernel(LUT_INPUTS.copy()), dtype=np.int8)
    if table.shape != (256,):
        raise ValueError("kernel must map 256 inputs to 256 outputs")
    return table


def mean(x, axes: Sequence[int], p: quant.MeanParams,
         keep_dims: bool = True) -> np.ndarray:
    x = _i8(x)
    outer, reduce, inner = quant.mean_plan(x.shape, axes)
    if reduce != p.num_elements:
        raise ValueError("MeanParams.num_elements does not match the axes")
    rank = x.ndim
    axes_n = sorted({int(a) % rank for a in axes})
    if keep_dims:
        shape = tuple(1 if i in axes_n else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes_n)
    out = np.zeros(shape, dtype=np.int8)
    params = ops.mean.MEAN_PARAMS.make(p)
    load().dk_mean_s8(ctypes.byref(params), outer, reduce, inner, _ptr8(x),
                      _ptr8(out))
    return out


def _pool(name: str, x, p: quant.PoolParams, padding: str) -> np.ndarray:
    x = _i8(x)
    n, ih, iw, c = x.shape
    oh, _ = quant.conv_output_size(ih, p.filter_h, p.stride_h, 1, padding)
    ow, _ = quant.conv_output_size(iw, p.filter_w, p.stride_w, 1, padding)
    out = np.zeros((n, oh, ow, c), dtype=np.int8)
    params = ops.pool.POOL_PARAMS.make(p)
    status = getattr(load(), name)(ctypes.byref(params), ctypes.byref(_dims(x.shape)),
                                   _ptr8(x), ctypes.byref(_dims(out.shape)),
                                   _ptr8(out))
    if status not in (None, 0):
        raise ValueError(f"{name} failed ({status})")
    return out


def avgpool(x, p: quant.PoolParams, padding: str) -> np.ndarray:
    return _pool("dk_avgpool_s8", x, p, padding)


def maxpool(x, p: quant.PoolParams, padding: str) -> np.ndarray:
    return _pool("dk_maxpool_s8", x, p, padding)


def log_softmax(x, q: dict) -> np.ndarray:
    """LOG_SOFTMAX over the last axis (parameters of quant.prepare_log_softmax)."""
    x = _i8(x)
    depth = x.shape[-1]
    out = np.zeros_like(x)
    params = ops.log_softmax.LOG_SOFTMAX_PARAMS.make(q)
    load().dk_log_softmax_s8(ctypes.byref(params), x.size // depth, depth, _ptr8(x), _ptr8(out))
    return out


def softmax(x, p: quant.SoftmaxParams) -> np.ndarray:
    x = _i8(x)
    depth = x.shape[-1]
    out = np.zeros_like(x)
    params = ops.softmax.SOFTMAX_PARAMS.make(p)
    load().dk_softmax_s8(ctypes.byref(params), x.size // depth, depth, _ptr8(x),
                         _ptr8(out))
    return out


# ------------------------------------------------------ optimised kernels ---


def conv1d(x, weights, bias, q: quant.ChannelQuant, stride: int = 1, padding: str = "SAME",
           small_acc: bool | None = None, block: int | None = None, weights8: bool = False) -> np.ndarray:
    """CONV_2D with a 1 x K filter through dk_conv1d_s8: ``x`` [1, 1, W, C] (or [1, W, C]),
    ``weights`` [O, 1, K, C], packed here exactly as the generator packs them (weights8: the
    fast path's size-mode records)."""
    x, w = _i8(x), _i8(weights)
    b = _bias(bias)
    in_w, in_c = x.shape[-2], x.shape[-1]
    out_c, _, k, _ = w.shape
    out_w, pad = quant.conv_output_size(in_w, k, stride, 1, padding)
    taps = -(-(k * in_c) // 4) * 4
    packed = np.ascontiguousarray(ops.conv1d.pack_conv1d(w, taps))
    if small_acc is None:
        small_acc = ops.conv1d.small_accumulators(w, b, q)
    block = ops.conv1d.conv1d_block(in_c, k, stride) if block is None else block
    params = ops.conv1d.CONV1D_PARAMS.make(q, in_w=in_w, in_c=in_c, out_w=out_w, out_c=out_c, kernel=k,
                                           stride=stride, pad=pad, taps=taps, small_acc=int(small_acc),
                                           block=block, weights8=int(weights8))
    scratch = np.zeros(load().dk_conv1d_scratch_bytes(ctypes.byref(params)) // 2, np.int16)
    out = np.zeros((1, 1, out_w, out_c), dtype=np.int8)
    if ops.conv1d.conv1d_fast(in_c, stride, small_acc, q):    # the generator's choice, as it makes it
        rec = np.ascontiguousarray(ops.conv1d.pack_conv1d_fast(w, b, q, taps, weights8))
        load().dk_conv1d_s8_fast(ctypes.byref(params), _ptr8(x), rec.ctypes.data_as(POINTER(ctypes.c_int16)),
                                 scratch.ctypes.data_as(POINTER(ctypes.c_int16)), _ptr8(out))
        return out
    cq, keep = _channel_requant(q)
    load().dk_conv1d_s8(ctypes.byref(params), ctypes.byref(cq), _ptr8(x), packed.ctypes.data_as(_I8P), _ptr32(b),
                        scratch.ctypes.data_as(POINTER(ctypes.c_int16)), _ptr8(out))
    return out


def conv1d_scratch_bytes(in_c: int, kernel: int, stride: int, block: int) -> int:
    params = ops.conv1d.CONV1D_PARAMS.make(input_offset=0, output_offset=0, in_w=1, in_c=in_c, out_w=1, out_c=1,
                                           kernel=kernel, stride=stride, pad=0, taps=4,
                                           activation=quant.Activation(-128, 127), small_acc=1, block=block,
                                           weights8=0)
    return int(load().dk_conv1d_scratch_bytes(ctypes.byref(params)))


def shrink(r, tau, shortcut, add: quant.AddParams, sub: quant.AddParams, total: quant.AddParams,
           res: quant.AddParams | None, min_value: int, sum_s_first: bool = True,
           res_y_first: bool = True, stage: int = 4) -> np.ndarray:
    """dk_shrink_s8 on r [L, C], tau [C], shortcut [L, C] or None."""
    r, tau = _i8(r), _i8(tau)
    L, C = r.shape[-2], r.shape[-1]
    params = ops.shrink.SHRINK_PARAMS.make(add=add, sub=sub, sum=total, res=res or ops.add.UNUSED,
                                           min_value=min_value, sum_s_first=sum_s_first,
                                           res_y_first=res_y_first)
    sc = None if shortcut is None else _i8(shortcut)
    out = np.zeros_like(r)
    load().dk_shrink_s8(ctypes.byref(params), L, C, _ptr8(r), _ptr8(tau),
                        None if sc is None else _ptr8(sc), _ptr8(out), stage)
    return out


def channel_affine(x, scale, shift, mul: quant.MulParams, add: quant.AddParams,
                   mul_x_first: bool = True, add_u_first: bool = True, stage: int = 1) -> np.ndarray:
    x = _i8(x)
    scale, shift = _i8(scale), _i8(shift)
    L, C = x.shape[-2], x.shape[-1]
    params = ops.channel_affine.CHANNEL_AFFINE_PARAMS.make(mul=mul, add=add, mul_x_first=mul_x_first,
                                                           add_u_first=add_u_first)
    out = np.zeros_like(x)
    load().dk_channel_affine_s8(ctypes.byref(params), L, C, _ptr8(x), _ptr8(scale), _ptr8(shift),
                                _ptr8(out), stage)
    return out


def abs_mean(x, abs_params: quant.AbsParams, mean_params: quant.MeanParams):
    """(|x| as TFLM's ABS gives it, mean over positions) through dk_abs_mean_s8."""
    x = _i8(x)
    L, C = x.shape[-2], x.shape[-1]
    table = np.asarray(quant.abs_table(abs_params), dtype=np.int8)
    params = ops.mean.MEAN_PARAMS.make(mean_params)
    a = np.zeros_like(x)
    out = np.zeros(C, dtype=np.int8)
    load().dk_abs_mean_s8(_ptr8(table), ctypes.byref(params), L, C, _ptr8(x), _ptr8(a), _ptr8(out))
    out2 = np.zeros(C, dtype=np.int8)
    load().dk_abs_mean_s8(_ptr8(table), ctypes.byref(params), L, C, _ptr8(x), None, _ptr8(out2))
    if not np.array_equal(out, out2):
        raise AssertionError("dk_abs_mean_s8 gives a different mean with and without abs_out")
    return a, out


def add_same(a, b, p: quant.AddParams, subtract: bool = False) -> np.ndarray:
    a, b = _i8(a), _i8(b)
    out = np.zeros_like(a)
    load().dk_add_same_s8(ctypes.byref(_add_struct(p)), a.size, _ptr8(a), _ptr8(b), _ptr8(out),
                          int(subtract))
    return out


def preprocess(samples, scale: float, zero_point: int, n: int | None = None) -> tuple[int, np.ndarray, dict]:
    """dk_preprocess_s16 on one int16 window: (status, int8 output, per-window integers).
    n overrides the length passed to C (to test its checks); the output is then empty."""
    x = np.ascontiguousarray(samples, np.int16).reshape(-1)
    length = len(x) if n is None else n
    out = np.zeros(max(len(x), 1), np.int8)
    info = desc.PREPROCESS_INFO.ctype()
    status = load().dk_preprocess_s16(x.ctypes.data_as(POINTER(ctypes.c_int16)), length,
                                      float(scale), int(zero_point), _ptr8(out),
                                      ctypes.byref(info))
    return status, out[:len(x)], {"mean": info.mean, "energy": info.energy,
                                  "multiplier": info.multiplier, "shift": info.shift}
