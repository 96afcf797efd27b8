"""The host half of the board protocol: COBS framing, CRC, and the command payloads.

The format is specified once, in firmware_gen/harness/protocol.h; this module mirrors its
numbers. A frame before encoding is

    [len u16][seq u16][cmd u8][payload][crc32 u32]       (little-endian, zlib CRC-32)

COBS-encoded and followed by a 0x00 delimiter (and, when sent, preceded by one too).
Nothing here touches a serial port; runner/link.py does.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

import numpy as np

PROTO_VERSION = 1
HEADER = struct.Struct("<HHB")
CRC = struct.Struct("<I")
HEADER_BYTES = HEADER.size
CRC_BYTES = CRC.size
SEQ_UNKNOWN = 0xFFFF           # an ERROR whose request could not be read
SEQ_LIMIT = 0xFFFF             # host seq numbers run 0..0xFFFE
RESULT_PART = struct.Struct("<HH")
DEBUG_DATA = struct.Struct("<HI")
RAW_HEADER = struct.Struct("<I")           # samples
RAW_RESULT_HEADER = struct.Struct("<QQ")   # work of the preprocessing, of the model
MONITOR_REQUEST = struct.Struct("<IBH")      # hop, mode, smooth_windows
MONITOR_ACK = struct.Struct("<IIBHHII")      # window, hop, mode, smooth, max_verdicts, ring, scratch
VERDICTS_HEADER = struct.Struct("<IIHB")     # received, until_next, count, ended
VERDICT = struct.Struct("<IBBIII")           # start, class, smoothed, work_pre, work, input_crc
STREAM_END = 0x01
SMOOTHING_MODES = ("majority", "mean")       # MONITOR mode 0, 1 (firmware_gen/harness/monitor.h)
ERROR = struct.Struct("<BBI")
COBS_MAX_RUN = 254


class Command(enum.IntEnum):
    HELLO = 0x01
    PING = 0x02
    INFER = 0x03
    DEBUG = 0x04
    LAYER = 0x05
    STATS = 0x06
    RESET = 0x07
    EXIT = 0x08
    RAW = 0x09
    MONITOR = 0x0A
    STREAM = 0x0B
    LINK = 0x0C

    INFO = 0x81
    PONG = 0x82
    RESULT = 0x83
    DEBUG_DATA = 0x84
    DEBUG_END = 0x94
    LAYER_INFO = 0x85
    STATS_DATA = 0x86
    RESET_ACK = 0x87
    EXIT_ACK = 0x88
    RAW_RESULT = 0x89
    MONITOR_ACK = 0x8A
    VERDICTS = 0x8B
    LINK_ACK = 0x8C
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    BAD_CRC = 1
    UNKNOWN_COMMAND = 2
    BAD_LENGTH = 3
    BAD_SHAPE = 4
    BATCH_TOO_LARGE = 5
    FRAME_TOO_LONG = 6
    BUSY = 7
    INTERNAL = 8
    BAD_FRAME = 9
    PREPROCESS = 10
    BAD_HOP = 11
    BAD_SMOOTHING = 12
    NOT_STREAMING = 13
    STREAM_SHORT = 14
    NO_LINK = 15


# Errors that say the request was damaged on the way, not that it was wrong: send it again.
LINK_ERRORS = frozenset({ErrorCode.BAD_CRC, ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LONG})

STAT_NAMES = ("frames", "bad_crc", "bad_frame", "too_long", "errors_sent",
              "retransmissions", "invocations")


class FrameError(ValueError):
    """Bytes between two delimiters that are not a valid frame."""


class ConsoleLine(str):
    """A line of text the board printed unasked (the boot self-test), ended by a delimiter
    like a frame. Not an error: it is what the firmware says before the host speaks."""


_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _console_line(data: bytes) -> ConsoleLine | None:
    # A frame's header and CRC make an all-printable frame ending in CR LF vanishingly
    # rare; anything else between delimiters is treated as a frame.
    if len(data) >= 3 and data.endswith(b"\r\n") and _TEXT_BYTES.issuperset(data):
        return ConsoleLine(data.decode("ascii").rstrip("\r\n"))
    return None


# --- COBS ---------------------------------------------------------------------------------

def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: `data` without any 0x00, one byte per 254 longer.

    Each block is a code n (1..255) and n-1 non-zero bytes; a code below 255 stands for a
    zero after its bytes, except at the very end.
    """
    out = bytearray()
    i, n = 0, len(data)
    while True:
        zero = data.find(0, i, i + COBS_MAX_RUN)
        run = (min(n, i + COBS_MAX_RUN) if zero < 0 else zero) - i
        out.append(run + 1)
        out += data[i:i + run]
        i += run
        if i == n:
            return bytes(out)
        if run < COBS_MAX_RUN:
            i += 1  # the zero this block stood for


def cobs_decode(encoded: bytes) -> bytes:
    """Inverse of cobs_encode; FrameError if a 0x00 or a short last block shows damage."""
    out = bytearray()
    i, n = 0, len(encoded)
    while i < n:
        code = encoded[i]
        if code == 0:
            raise FrameError("COBS data contains a zero byte")
        end = i + code
        if end > n:
            raise FrameError(f"COBS block at {i} wants {code - 1} bytes, {n - i - 1} left")
        block = encoded[i + 1:end]
        if 0 in block:
            raise FrameError("COBS data contains a zero byte")
        out += block
        if code < 0xFF and end < n:
            out.append(0)
        i = end
    return bytes(out)


# --- frames -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes


def pack_frame(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    """The raw (unencoded) frame with its CRC."""
    body = HEADER.pack(len(payload), seq, cmd) + bytes(payload)
    return body + CRC.pack(zlib.crc32(body))


def encode_frame(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    """What goes on the wire: leading delimiter, COBS frame, trailing delimiter."""
    return b"\0" + cobs_encode(pack_frame(seq, cmd, payload)) + b"\0"


def parse_frame(raw: bytes) -> Frame:
    """A decoded (un-COBSed) frame -> Frame; FrameError if short, corrupt or inconsistent."""
    if len(raw) < HEADER_BYTES + CRC_BYTES:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    body, (crc,) = raw[:-CRC_BYTES], CRC.unpack(raw[-CRC_BYTES:])
    if zlib.crc32(body) != crc:
        raise FrameError("frame CRC mismatch")
    length, seq, cmd = HEADER.unpack_from(body)
    if length != len(body) - HEADER_BYTES:
        raise FrameError(f"frame says {length} payload bytes, has {len(body) - HEADER_BYTES}")
    return Frame(seq, cmd, bytes(body[HEADER_BYTES:]))


class FrameReader:
    """Splits a byte stream at delimiters: feed() bytes, get back what lay between them.

    Each item is a Frame, a ConsoleLine (text the board printed at boot) or a FrameError
    (damaged frames are reported, not raised, so one bad frame does not hide the good ones
    after it). Empty frames are skipped.
    """

    def __init__(self, max_encoded: int):
        self.max_encoded = max_encoded
        self._pending = bytearray()
        self._overflow = False

    def reset(self) -> None:
        self._pending.clear()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | ConsoleLine | FrameError]:
        items: list[Frame | ConsoleLine | FrameError] = []
        start = 0
        while True:
            end = data.find(0, start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                self._pending += chunk
                if len(self._pending) > self.max_encoded:
                    self._overflow = True   # keep memory bounded whatever arrives
                    self._pending.clear()
            if end < 0:
                return items
            if self._overflow:
                items.append(FrameError("frame longer than the largest allowed"))
            elif (line := _console_line(bytes(self._pending))) is not None:
                items.append(line)
            elif self._pending:
                try:
                    items.append(parse_frame(cobs_decode(bytes(self._pending))))
                except FrameError as exc:
                    items.append(exc)
            self.reset()
            start = end + 1


def max_encoded_bytes(max_payload: int) -> int:
    raw = HEADER_BYTES + max_payload + CRC_BYTES
    return raw + raw // COBS_MAX_RUN + 1


# --- payloads -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    size: int              # bytes
    scale: float
    zero_point: int

    @property
    def dtype(self) -> np.dtype:
        """int8, or float32 when the size is 4 bytes per element (the float32 output of a
        model ending in DEQUANTIZE, the float32 input of one starting with a QUANTIZE; the
        wire format has no type field, model_api.h)."""
        n = int(np.prod(self.shape, dtype=np.int64))
        return np.dtype("<f4") if n and self.size == 4 * n else np.dtype(np.int8)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Output bytes as int8 (n, size) -> (n, *shape) values of this tensor's type (the
        same bytes: float32 outputs are compared bit for bit)."""
        raw = np.ascontiguousarray(raw, np.int8).reshape(len(raw), self.size)
        return raw.view(self.dtype).reshape(len(raw), *self.shape)


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str
    kind: str          # "activation" or "threshold"
    tensor: TensorInfo


@dataclass(frozen=True)
class DeviceInfo:
    protocol_version: int
    max_payload: int
    max_batch: int
    layer_count: int
    arena_bytes: int
    work_unit: str     # "instructions" (QEMU -icount) or "cycles" (silicon)
    model_hash: bytes
    input: TensorInfo
    output: TensorInfo
    board: str
    firmware_version: str
    model_name: str
    model_status: int


TENSOR_KINDS = ("activation", "threshold")


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FrameError("payload shorter than its fields")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def text(self) -> str:
        return self.raw(self.take("B")).decode("utf-8", "replace")

    def tensor(self) -> TensorInfo:
        ndim = self.take("B")
        shape = tuple(self.take("I") for _ in range(ndim))
        size, scale, zero_point = self.take("Ifi")
        return TensorInfo(shape, size, scale, zero_point)


def parse_info(payload: bytes) -> DeviceInfo:
    try:
        r = _Reader(payload)
        version, max_payload, max_batch, layers, arena, unit = r.take("BHHHIB")
        model_hash = r.raw(32)
        inp, out = r.tensor(), r.tensor()
        board, firmware, model = r.text(), r.text(), r.text()
        status = r.take("i")
    except struct.error as exc:
        raise FrameError(f"INFO payload too short: {exc}") from None
    return DeviceInfo(version, max_payload, max_batch, layers, arena,
                      "cycles" if unit == 1 else "instructions", model_hash, inp, out,
                      board, firmware, model, status)


def parse_layer_info(payload: bytes) -> LayerInfo:
    try:
        r = _Reader(payload)
        index, kind = r.take("HB")
        tensor = r.tensor()
        name = r.text()
    except struct.error as exc:
        raise FrameError(f"LAYER_INFO payload too short: {exc}") from None
    kind_name = TENSOR_KINDS[kind] if kind < len(TENSOR_KINDS) else f"kind{kind}"
    return LayerInfo(index, name, kind_name, tensor)


def shape_header(shape: tuple[int, ...]) -> bytes:
    return struct.pack(f"<B{len(shape)}I", len(shape), *shape)


def infer_payload(batch: np.ndarray) -> bytes:
    """INFER request for inputs of shape (n, *input_shape): int8, or float32 (a model whose
    first op quantizes a float32 input) as little-endian bytes, 4 per value."""
    data = batch.astype(batch.dtype.newbyteorder("<"), copy=False).tobytes()
    return struct.pack("<H", batch.shape[0]) + shape_header(batch.shape[1:]) + data


def parse_result(body: bytes, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Joined RESULT chunks -> (outputs int8 (n, out_size), work uint64 (n,))."""
    (n,) = struct.unpack_from("<H", body)
    if len(body) != 2 + n * (8 + out_size):
        raise FrameError(f"RESULT of {len(body)} bytes does not hold {n} outputs of "
                         f"{out_size} bytes")
    work = np.frombuffer(body, "<u8", n, 2).astype(np.uint64)
    outputs = np.frombuffer(body, np.int8, n * out_size, 2 + 8 * n).reshape(n, out_size)
    return outputs.copy(), work


def raw_payload(samples: np.ndarray) -> bytes:
    """RAW request for one window of int16 samples."""
    x = np.ascontiguousarray(samples, "<i2").reshape(-1)
    return RAW_HEADER.pack(len(x)) + x.tobytes()


@dataclass(frozen=True)
class RawResult:
    """The board's answer to RAW: the int8 input it preprocessed and the model's output."""
    input: np.ndarray          # int8 (in_size,)
    output: np.ndarray         # int8 (out_size,)
    preprocess_work: int       # board_counter around dk_preprocess_s16
    work: int                  # board_counter around model_invoke


def parse_raw_result(payload: bytes, in_size: int, out_size: int) -> RawResult:
    expected = RAW_RESULT_HEADER.size + in_size + out_size
    if len(payload) != expected:
        raise FrameError(f"RAW_RESULT of {len(payload)} bytes; expected {expected} (an input "
                         f"of {in_size} and an output of {out_size} bytes)")
    pre, work = RAW_RESULT_HEADER.unpack_from(payload)
    at = RAW_RESULT_HEADER.size
    x = np.frombuffer(payload, np.int8, in_size, at).copy()
    y = np.frombuffer(payload, np.int8, out_size, at + in_size).copy()
    return RawResult(x, y, pre, work)


def monitor_payload(hop: int, mode: str, smooth_windows: int) -> bytes:
    """MONITOR request: start a stream with this hop and smoothing."""
    return MONITOR_REQUEST.pack(hop, SMOOTHING_MODES.index(mode), smooth_windows)


@dataclass(frozen=True)
class MonitorInfo:
    """The board's answer to MONITOR."""
    window: int
    hop: int
    mode: str
    smooth_windows: int
    max_verdicts: int          # verdicts one STREAM answer holds
    ring_bytes: int
    scratch_bytes: int


def parse_monitor_ack(payload: bytes) -> MonitorInfo:
    if len(payload) != MONITOR_ACK.size:
        raise FrameError(f"MONITOR_ACK of {len(payload)} bytes; expected {MONITOR_ACK.size}")
    window, hop, mode, smooth, most, ring, scratch = MONITOR_ACK.unpack(payload)
    name = SMOOTHING_MODES[mode] if mode < len(SMOOTHING_MODES) else f"mode{mode}"
    return MonitorInfo(window, hop, name, smooth, most, ring, scratch)


def stream_payload(samples: np.ndarray, end: bool = False) -> bytes:
    """STREAM request: the next int16 samples of the stream (END: the last ones)."""
    x = np.ascontiguousarray(samples, "<i2").reshape(-1)
    return bytes([STREAM_END if end else 0]) + x.tobytes()


@dataclass(frozen=True)
class Verdicts:
    """The board's answer to STREAM: one entry per window the chunk completed."""
    received: int              # samples since MONITOR (mod 2^32)
    until_next: int            # samples still needed for the next verdict
    ended: bool
    start: np.ndarray          # uint32 (n,): first sample of each window
    cls: np.ndarray            # uint8 (n,)
    smoothed: np.ndarray       # uint8 (n,)
    work_pre: np.ndarray       # uint32 (n,): board_counter over the preprocessing
    work: np.ndarray           # uint32 (n,): over the whole window
    input_crc: np.ndarray      # uint32 (n,): zlib CRC-32 of the int8 input it made
    output: np.ndarray         # int8 (n, out_size)


def parse_verdicts(payload: bytes, out_size: int) -> Verdicts:
    if len(payload) < VERDICTS_HEADER.size:
        raise FrameError(f"VERDICTS of {len(payload)} bytes is shorter than its header")
    received, until_next, n, ended = VERDICTS_HEADER.unpack_from(payload)
    size = VERDICT.size + out_size
    if len(payload) != VERDICTS_HEADER.size + n * size:
        raise FrameError(f"VERDICTS of {len(payload)} bytes does not hold {n} verdicts of "
                         f"{size} bytes")
    rows = [VERDICT.unpack_from(payload, VERDICTS_HEADER.size + i * size) for i in range(n)]
    cols = list(zip(*rows)) if rows else [()] * 6
    out = np.frombuffer(b"".join(payload[VERDICTS_HEADER.size + i * size + VERDICT.size:
                                         VERDICTS_HEADER.size + (i + 1) * size]
                                 for i in range(n)), np.int8).reshape(n, out_size)
    return Verdicts(received, until_next, bool(ended), np.array(cols[0], np.uint32),
                    np.array(cols[1], np.uint8), np.array(cols[2], np.uint8),
                    np.array(cols[3], np.uint32), np.array(cols[4], np.uint32),
                    np.array(cols[5], np.uint32), out.copy())


def parse_error(payload: bytes) -> tuple[ErrorCode | int, int, int]:
    code, cmd, detail = ERROR.unpack_from(payload.ljust(ERROR.size, b"\0"))
    try:
        code = ErrorCode(code)
    except ValueError:
        pass
    return code, cmd, detail


def error_name(code) -> str:
    return code.name if isinstance(code, ErrorCode) else f"ERROR_{code}"
