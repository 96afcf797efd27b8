"""Kernel parameter structs, each described once.

A :class:`Struct` is a name and a list of fields (name, C type or another Struct, optional
array length, comment). From that one description come:

- the C ``typedef`` (``c_decl``), written into ``runtime/include/dk_params.h`` by
  ``python -m firmware_gen.params`` (tests/test_params.py fails when the header is stale);
- the ctypes mirror the host tests call the kernels with (``ctype``, ``make``);
- the designated initializer codegen prints into model.c (``init``);
- ``#define``\\ s of the field offsets the hand-written assembly reads (``asm_offsets``),
  which the kernel checks with ``_Static_assert`` against ``offsetof``.

Values for ``make`` / ``init`` are read by field name from a mapping or an object's
attributes (the parameter dataclasses of firmware_gen.quant use the C field names), with
keyword overrides; a nested Struct field reads its value the same way.
"""

from __future__ import annotations

import ctypes
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

HEADER = Path(__file__).resolve().parent / "runtime" / "include" / "dk_params.h"

_SCALARS = {
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "float": ctypes.c_float,
    "const int32_t *": ctypes.POINTER(ctypes.c_int32),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: Any            # a C type name of _SCALARS, or a Struct
    length: int = 0      # > 0: an array of that many
    comment: str = ""


def field(name: str, ctype, length: int = 0, comment: str = "") -> Field:
    if not isinstance(ctype, Struct) and ctype not in _SCALARS:
        raise ValueError(f"field {name}: unknown C type {ctype!r} (one of {', '.join(_SCALARS)} or a Struct)")
    return Field(name, ctype, length, comment)


class Struct:
    """One C parameter struct. ``asm_offsets`` names the fields whose byte offsets
    dk_params.h publishes as DK_<NAME>_<FIELD> for assembly (the struct must hold no
    pointers, so the offsets are the same on the host and on the device)."""

    def __init__(self, name: str, fields: Sequence[Field], doc: str = "",
                 asm_offsets: Sequence[str] = ()):
        self.name = name
        self.fields = list(fields)
        self.doc = doc
        self.asm_offsets = tuple(asm_offsets)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: a field name repeats")
        if any(a not in names for a in self.asm_offsets):
            raise ValueError(f"{name}: asm_offsets names a field it does not have")
        if self.asm_offsets and self._has_pointer():
            raise ValueError(f"{name}: a struct with pointers has no target-independent offsets")
        self._ctype = None
        ALL.append(self)

    def __repr__(self) -> str:
        return f"Struct({self.name})"

    def _has_pointer(self) -> bool:
        return any(f.type.endswith("*") if isinstance(f.type, str) else f.type._has_pointer()
                   for f in self.fields)

    def dependencies(self) -> list["Struct"]:
        return [f.type for f in self.fields if isinstance(f.type, Struct)]

    # -- C ----------------------------------------------------------------------------------
    def c_decl(self) -> str:
        lines = []
        if self.doc:
            doc = self.doc.strip().splitlines()
            lines.append("/* " + doc[0])
            lines += [" * " + d if d else " *" for d in doc[1:]]
            lines[-1] += " */"
        rows = []
        for f in self.fields:
            ctype = f.type.name if isinstance(f.type, Struct) else f.type
            sep = "" if ctype.endswith("*") else " "
            rows.append((f"    {ctype}{sep}{f.name}" + (f"[{f.length}]" if f.length else "") + ";", f.comment))
        width = max(len(r) for r, c in rows if c) + 1 if any(c for _, c in rows) else 0
        lines.append("typedef struct {")
        for text, comment in rows:
            if not comment:
                lines.append(text)
                continue
            chunks = textwrap.wrap(comment, max(40, 96 - width - 4))
            lines.append(f"{text.ljust(width)} /* {chunks[0]}" + (" */" if len(chunks) == 1 else ""))
            lines += [" " * (width + 4) + c for c in chunks[1:]]
            if len(chunks) > 1:
                lines[-1] += " */"
        lines.append(f"}} {self.name};")
        return "\n".join(lines)

    # -- ctypes -----------------------------------------------------------------------------
    @property
    def ctype(self) -> type[ctypes.Structure]:
        if self._ctype is None:
            fields = []
            for f in self.fields:
                t = f.type.ctype if isinstance(f.type, Struct) else _SCALARS[f.type]
                fields.append((f.name, t * f.length if f.length else t))
            self._ctype = type(self.name, (ctypes.Structure,), {"_fields_": fields})
        return self._ctype

    def offsets(self) -> dict[str, int]:
        return {f.name: getattr(self.ctype, f.name).offset for f in self.fields}

    def make(self, src=None, **values) -> ctypes.Structure:
        """The ctypes struct, fields read from ``values`` first, then from ``src``."""
        out = self.ctype()
        for f in self.fields:
            v = _value(self, f, src, values)
            if isinstance(f.type, Struct):
                setattr(out, f.name, v if isinstance(v, ctypes.Structure) else f.type.make(v))
            elif f.length:
                setattr(out, f.name, (_SCALARS[f.type] * f.length)(*(int(x) for x in v)))
            elif f.type.endswith("*"):
                setattr(out, f.name, v)
            elif f.type == "float":
                setattr(out, f.name, float(v))
            else:
                setattr(out, f.name, int(v))
        return out

    # -- generated C ------------------------------------------------------------------------
    def init(self, src=None, indent: int = 8, width: int = 100, **values) -> str:
        """A designated initializer ``{ .field = value, ... }``: on one line when it fits in
        `width` columns from `indent`, else one field per line. Strings are C expressions
        (e.g. the name of a const array)."""
        parts = []
        for f in self.fields:
            v = _value(self, f, src, values)
            if isinstance(f.type, Struct):
                text = f.type.init(v, indent + 4, width)
            elif f.length:
                items = [str(int(x)) for x in v]
                if len(items) != f.length:
                    raise ValueError(f"{self.name}.{f.name}: {len(items)} values for [{f.length}]")
                text = "{" + ", ".join(items) + "}"
            elif isinstance(v, str):
                text = v
            elif f.type == "float":
                text = float_literal(v)
            else:
                text = str(int(v))
            parts.append(f".{f.name} = {text}")
        flat = "{ " + ", ".join(parts) + " }"
        if indent + len(flat) <= width and "\n" not in flat:
            return flat
        pad = " " * (indent + 4)
        return "{\n" + ",\n".join(pad + p for p in parts) + "\n" + " " * indent + "}"


def float_literal(v) -> str:
    """A float32 value as a C literal that reads back as exactly that value: the shortest
    decimal of the float32 (as a double, which it is exactly) with the f suffix."""
    import numpy as np
    x = float(np.float32(v))
    return repr(x) + "f" if "e" in repr(x) or "." in repr(x) else f"{x:.1f}f"


def _value(struct: Struct, f: Field, src, values: dict):
    if f.name in values:
        return values[f.name]
    if isinstance(src, dict):
        if f.name in src:
            return src[f.name]
    elif src is not None and hasattr(src, f.name):
        return getattr(src, f.name)
    raise KeyError(f"{struct.name}: no value for field {f.name!r}")


ALL: list[Struct] = []


def structs() -> list[Struct]:
    """Every described struct (the op units' too), each after the structs it contains."""
    import firmware_gen.ops  # noqa: F401  (registers the op units' structs)
    out: list[Struct] = []

    def visit(s):
        if s not in out:
            for d in s.dependencies():
                visit(d)
            out.append(s)
    for s in ALL:
        visit(s)
    return out


def by_name(name: str) -> Struct:
    for s in structs():
        if s.name == name:
            return s
    raise KeyError(name)


def asm_macro(struct: Struct, name: str) -> str:
    return f"DK_{struct.name.upper().removeprefix('DK_')}_{name.upper()}"


def header_text() -> str:
    lines = ["/*",
             " * dk_params.h - the parameter structs of the dk kernels.",
             " *",
             " * GENERATED from the descriptions in firmware_gen/params.py and the op units",
             " * of firmware_gen/ops;",
             " * do not edit: run `python -m firmware_gen.params` (tests/test_params.py checks it).",
             " * Included by dk.h.",
             " */",
             "#ifndef DK_PARAMS_H",
             "#define DK_PARAMS_H",
             "",
             "#include <stdint.h>",
             ""]
    for s in structs():
        lines += [s.c_decl(), ""]
        if s.asm_offsets:
            lines.append(f"/* byte offsets of {s.name} fields read by assembly (checked with offsetof) */")
            offs = s.offsets()
            lines += [f"#define {asm_macro(s, a)} {offs[a]}" for a in s.asm_offsets]
            lines.append("")
    lines.append("#endif /* DK_PARAMS_H */")
    return "\n".join(lines) + "\n"


def write_header(path: Path = HEADER) -> bool:
    """Write dk_params.h; True when it changed."""
    text = header_text()
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)      # a compiler reading the header never sees half of it
    return True


# --- structs shared by many kernels ---------------------------------------------------------

REQUANT = Struct("dk_requant", [
    field("multiplier", "int32_t"),
    field("shift", "int32_t"),
], doc="One requantization step: scale by multiplier * 2^(shift - 31).")

CHANNEL_REQUANT = Struct("dk_channel_requant", [
    field("multiplier", "const int32_t *"),
    field("shift", "const int32_t *"),
    field("per_channel", "int32_t"),
], doc="Per-output-channel requantization (CONV, DEPTHWISE, FULLY_CONNECTED).\n"
       "For per-tensor quantization pass one-element arrays and per_channel = 0.")

ACTIVATION = Struct("dk_activation", [
    field("min", "int32_t"),
    field("max", "int32_t"),
], doc="Clamp range of the quantized output (fused activation and int8 limits).")

DIMS = Struct("dk_dims", [
    field("n", "int32_t"),
    field("h", "int32_t"),
    field("w", "int32_t"),
    field("c", "int32_t"),
], doc="NHWC dimensions. For filters: n = output channels, c = input channels\n"
       "per group (CONV) or 1 (DEPTHWISE, whose filter is [1, kh, kw, out_c]).")

BROADCAST = Struct("dk_broadcast", [
    field("out_dims", "int32_t", 4),
    field("in1_strides", "int32_t", 4),
    field("in2_strides", "int32_t", 4),
], doc="Four-dimensional iteration plan for broadcasting binary operators.\n"
       "out_dims is the output shape (padded/compressed to 4-D by\n"
       "quant.broadcast_plan); in1_strides / in2_strides are element strides\n"
       "for each output dimension, 0 where that input is broadcast. A same-shape\n"
       "operation is out_dims {1, 1, 1, N} with strides {0, 0, 0, 1}.")

PREPROCESS_INFO = Struct("dk_preprocess_info", [
    field("mean", "int32_t", comment="rounded mean of the window"),
    field("energy", "int64_t", comment="sum of (x - mean)^2; 0 = silent window"),
    field("multiplier", "int32_t", comment="M: c * M * 2^-shift ~= c / (RMS * scale)"),
    field("shift", "int32_t"),
], doc="Per-window integers of the raw-input preprocessing (for reports and tests).")


def dims(shape) -> dict:
    n, h, w, c = (int(d) for d in shape)
    return {"n": n, "h": h, "w": w, "c": c}


if __name__ == "__main__":
    # run as a script this module is __main__: write through the one the op units import
    from firmware_gen import params
    print(f"{HEADER.name}: {'written' if params.write_header() else 'up to date'}")
