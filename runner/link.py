"""A board running the drsn-edge harness, reached over any pyserial URL.

    with Device("socket://127.0.0.1:4321") as dev:     # or "/dev/ttyACM0"
        info = dev.info()                              # board, model hash, shapes, ...
        outputs, work = dev.infer(batch)               # int8 (n, *input_shape) in
        dump = dev.debug(batch[0])                     # every layer's int8 output, tau
        raw = dev.infer_raw(samples)                   # int16 window in: int8 input + output

Requests are stop-and-wait. A request that gets no complete answer within `timeout`
seconds (or whose answer arrives damaged, or that the board reports as damaged) is sent
again with the same seq; the firmware answers a repeat from its stored response without
running the inference again, so results are neither lost nor duplicated. A dropped
connection (a TCP link to QEMU, a USB serial adapter re-enumerating) is reopened and the
request repeated.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import serial

from drsn_edge.errors import UserError
from runner.protocol import (
    LINK_ERRORS, SEQ_LIMIT, ConsoleLine, STAT_NAMES, Command, DeviceInfo, ErrorCode, Frame, FrameError,
    FrameReader, LayerInfo, RESULT_PART, DEBUG_DATA, encode_frame, error_name,
    RawResult, infer_payload, max_encoded_bytes, parse_error, parse_info, parse_layer_info,
    parse_raw_result, parse_result, raw_payload, shape_header,
)

DEFAULT_BAUD = 115200
# Until INFO has been read the host cannot know the board's limit; no board takes more.
DEFAULT_MAX_PAYLOAD = 1 << 16
BUSY_BACKOFF_S = 0.05
# How long one read waits on an rfc2217:// port, whose timeout is never changed (read_chunk).
RFC2217_POLL_S = 0.05


class DeviceError(UserError):
    """The board answered with an ERROR, or did not answer usably.

    code: the protocol's error name ("BAD_SHAPE", "BATCH_TOO_LARGE", ...), or "TIMEOUT",
    "DISCONNECTED", "PROTOCOL" for failures seen on the host side.
    """

    def __init__(self, code: str, message: str, detail: int | None = None):
        super().__init__(message)
        self.code = code
        self.detail = detail


class LinkTimeout(DeviceError):
    """No usable answer after all retries."""


@dataclass
class LinkStats:
    """What it took to get the answers: non-zero values mean a noisy or slow link."""
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_frames: int = 0        # damaged frames received from the board
    link_errors: int = 0       # the board said our request arrived damaged
    stale_frames: int = 0      # answers to earlier requests (repeats), ignored
    reconnects: int = 0
    busy: int = 0
    bytes_sent: int = 0        # on the wire, framing included: what a baud rate must carry
    bytes_received: int = 0


@dataclass
class LayerTensor:
    info: LayerInfo
    data: np.ndarray           # int8 (float32 for a final DEQUANTIZE), shaped as info.tensor.shape


@dataclass
class DebugResult:
    output: np.ndarray                          # the model's int8 (or float32) output
    layers: list[LayerTensor] = field(default_factory=list)

    @property
    def activations(self) -> dict[str, np.ndarray]:
        return {t.info.name: t.data for t in self.layers if t.info.kind == "activation"}

    @property
    def thresholds(self) -> dict[str, np.ndarray]:
        """Per-channel shrinkage thresholds tau (int8, the layer's quantization)."""
        return {t.info.name: t.data for t in self.layers if t.info.kind == "threshold"}


class _Retry(Exception):
    """Internal: send the same request again."""

    def __init__(self, message: str, code: str = "TIMEOUT"):
        super().__init__(message)
        self.code = code


class Device:
    """One board behind a serial URL. Not thread-safe: one request at a time."""

    def __init__(self, url: str, baudrate: int = DEFAULT_BAUD, timeout: float = 2.0,
                 retries: int = 5, open_timeout: float = 5.0):
        self.url = url
        self.baudrate = baudrate
        self.timeout = timeout
        self.retries = retries
        self.open_timeout = open_timeout
        self.stats = LinkStats()
        # A random first seq: a host that reconnects to a board still holding an answer
        # for seq N from an earlier session will not be served that stale answer.
        self._seq = int.from_bytes(os.urandom(2), "little") % SEQ_LIMIT
        self._info: DeviceInfo | None = None
        self._layers: list[LayerInfo] | None = None
        self._reader = FrameReader(max_encoded_bytes(DEFAULT_MAX_PAYLOAD))
        self._inbox: list[Frame | FrameError] = []
        self.console_lines: list[ConsoleLine] = []
        self._port = None
        self._fixed_timeout = url.startswith("rfc2217://")
        self._open()

    # --- public API -------------------------------------------------------------------

    def console(self, timeout: float = 5.0) -> list[str]:
        """Text lines the board printed unasked (the boot self-test line), waiting up to
        `timeout` s for the first one if none has arrived yet. Lines read are consumed."""
        deadline = time.monotonic() + timeout
        while not self.console_lines:
            items = self._read_items(deadline)
            if not items:
                break
            self._inbox = [i for i in items if not isinstance(i, ConsoleLine)] + self._inbox
            self.console_lines += [i for i in items if isinstance(i, ConsoleLine)]
            if self._inbox:
                break
        lines, self.console_lines = self.console_lines, []
        return [str(line) for line in lines]

    def info(self, refresh: bool = False) -> DeviceInfo:
        """HELLO: board, firmware, model hash, tensor shapes and quantization, limits."""
        if self._info is None or refresh:
            (frame,) = self.request(Command.HELLO)
            try:
                self._info = parse_info(frame.payload)
            except FrameError as exc:
                raise DeviceError("PROTOCOL", f"{self.url} sent a malformed INFO ({exc}); "
                                  f"is the firmware built from this drsn-edge version?") from None
            self._reader.max_encoded = max_encoded_bytes(self._info.max_payload)
        return self._info

    def ping(self, payload: bytes = b"") -> float:
        """Round trip time in seconds of a PING carrying `payload` (echoed back intact)."""
        started = time.perf_counter()
        (frame,) = self.request(Command.PING, payload)
        if frame.payload != bytes(payload):
            raise DeviceError("PROTOCOL", f"{self.url} echoed a different PING payload")
        return time.perf_counter() - started

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | int]:
        """Run the model on int8 inputs (float32 for a model that quantizes its float32 input).

        x of shape (n, *input_shape) or (n, input_size) -> (outputs (n, *output_shape),
        work (n,) uint64); x of exactly input_shape -> (output, work as int). Batches larger
        than the board takes at once are split into several requests.
        """
        info = self.info()
        batch, single = self._as_batch(x, info)
        if info.max_batch == 0:
            raise UserError(f"the board at {self.url} cannot take even one input of "
                            f"{info.input.size} bytes in a {info.max_payload}-byte frame; "
                            f"rebuild the harness with a larger PROTO_MAX_PAYLOAD")
        outputs, work = [], []
        for start in range(0, len(batch), info.max_batch):
            chunk = np.ascontiguousarray(batch[start:start + info.max_batch])
            frames = self.request(Command.INFER, infer_payload(chunk))
            body = b"".join(f.payload[RESULT_PART.size:] for f in frames)
            try:
                out, count = parse_result(body, info.output.size)
            except FrameError as exc:
                raise DeviceError("PROTOCOL", f"{self.url}: {exc}") from None
            if len(out) != len(chunk):
                raise DeviceError("PROTOCOL", f"{self.url} answered {len(out)} outputs for "
                                  f"{len(chunk)} inputs")
            outputs.append(out)
            work.append(count)
        out = info.output.decode(np.concatenate(outputs))
        counts = np.concatenate(work)
        return (out[0], int(counts[0])) if single else (out, counts)

    def infer_raw(self, samples: np.ndarray) -> RawResult:
        """One window of raw int16 sensor samples: the board preprocesses it into the
        model's int8 input (drsn_edge/preprocess.py defines how) and runs the model;
        returns both the int8 input it made and the output."""
        info = self.info()
        x = np.asarray(samples)
        if x.dtype != np.int16 or x.size != info.input.size:
            raise UserError(f"a raw window is {info.input.size} int16 samples for the model on "
                            f"{self.url}, got {x.size} {x.dtype} values")
        check_raw_fits(info, self.url)
        (frame,) = self.request(Command.RAW, raw_payload(x))
        try:
            return parse_raw_result(frame.payload, info.input.size, info.output.size)
        except FrameError as exc:
            raise DeviceError("PROTOCOL", f"{self.url}: {exc}") from None

    def layers(self) -> list[LayerInfo]:
        """The tensors DEBUG reports, in the model's order."""
        if self._layers is None:
            layers = []
            for i in range(self.info().layer_count):
                (frame,) = self.request(Command.LAYER, struct.pack("<H", i))
                layers.append(parse_layer_info(frame.payload))
            self._layers = layers
        return self._layers

    def debug(self, x: np.ndarray) -> DebugResult:
        """One input through the model, with every layer's int8 output and thresholds."""
        info = self.info()
        layers = self.layers()
        batch, _ = self._as_batch(x, info)
        if len(batch) != 1:
            raise UserError(f"debug() takes one input, got a batch of {len(batch)}")
        payload = shape_header(info.input.shape) + batch[0].astype(batch.dtype.newbyteorder("<"), copy=False).tobytes()
        for _attempt in range(self.retries + 1):
            frames = self.request(Command.DEBUG, payload)
            result = self._assemble_debug(frames, layers, info)
            if result is not None:
                return result
            # a DEBUG_DATA frame was lost on the way; the board re-runs DEBUG on request
            self.stats.retries += 1
        raise LinkTimeout("TIMEOUT", f"DEBUG dumps from {self.url} kept arriving incomplete "
                          f"after {self.retries + 1} attempts; the link loses frames")

    def board_stats(self) -> dict[str, int]:
        """The firmware's own counters (frames, errors, retransmissions, invocations)."""
        (frame,) = self.request(Command.STATS)
        values = struct.unpack_from(f"<{len(STAT_NAMES)}I", frame.payload)
        return dict(zip(STAT_NAMES, values))

    def monitor(self, hop: int, mode: str = "majority", smooth_windows: int = 1):
        """MONITOR: start a stream on the board (forgets any earlier one)."""
        from runner.protocol import monitor_payload, parse_monitor_ack
        (frame,) = self.request(Command.MONITOR, monitor_payload(hop, mode, smooth_windows))
        try:
            return parse_monitor_ack(frame.payload)
        except FrameError as exc:
            raise DeviceError("PROTOCOL", f"{self.url}: {exc}") from None

    def stream(self, samples: np.ndarray, end: bool = False):
        """STREAM: the next int16 samples of the stream; the verdicts they completed."""
        from runner.protocol import parse_verdicts, stream_payload
        x = np.asarray(samples)
        if x.dtype != np.int16:
            raise UserError(f"stream samples must be int16, got {x.dtype}")
        info = self.info()
        (frame,) = self.request(Command.STREAM, stream_payload(x, end))
        try:
            return parse_verdicts(frame.payload, info.output.size)
        except FrameError as exc:
            raise DeviceError("PROTOCOL", f"{self.url}: {exc}") from None

    def reset(self) -> None:
        """Reset the board (its stored response and counters are lost)."""
        self.request(Command.RESET)
        self._info = None
        self._layers = None
        if self.url.startswith("semihost://"):
            # The board restarts on its UART; the pipes of the old link lead nowhere now.
            self.close()
            self._open()

    def exit(self, code: int) -> None:
        """End the firmware with `code` (QEMU exits with it, through semihosting)."""
        self.request(Command.EXIT, struct.pack("<i", code), ends_link=True)

    def request(self, cmd: int, payload: bytes = b"", ends_link: bool = False) -> list[Frame]:
        """Send one request and return the frames of its answer (several for RESULT and
        DEBUG). Raises DeviceError for an ERROR answer, LinkTimeout when retries run out.
        ends_link: the request may end the board (EXIT), so a closed link answers it."""
        payload = bytes(payload)
        limit = self._info.max_payload if self._info else DEFAULT_MAX_PAYLOAD
        if len(payload) > limit:
            raise UserError(f"a {len(payload)}-byte request exceeds the board's "
                            f"{limit}-byte frame payload")
        seq = self._next_seq()
        wire = encode_frame(seq, cmd, payload)
        self.stats.requests += 1
        collected: dict = {}
        why, code = "no answer", "TIMEOUT"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            try:
                self.write(wire)
                return self._await(seq, cmd, collected)
            except _Retry as exc:
                why, code = str(exc), exc.code
            except serial.SerialException as exc:
                if ends_link:
                    # QEMU ends with the firmware, so the link can close before the answer
                    # is read (pyserial drops what it read in a call that then meets the
                    # closed socket). The board went away, as asked.
                    self.close()
                    return []
                why = f"connection lost ({exc})"
                self._reconnect()
        name = _command_name(cmd)
        if code == "BUSY":
            raise DeviceError("BUSY", f"{self.url} stayed busy for {name} through "
                              f"{self.retries + 1} attempts")
        raise LinkTimeout("TIMEOUT", f"no answer to {name} from {self.url} after "
                          f"{self.retries + 1} attempts of {self.timeout} s (last: {why}); "
                          f"check that the board is powered and runs the drsn-edge harness, "
                          f"that {self.url} is its serial port, and the baud rate "
                          f"({self.baudrate})")

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, framed or not (diagnostics, fuzzing)."""
        self.write(bytes(data))

    def write(self, wire: bytes) -> None:
        self._port.write(wire)
        self.stats.bytes_sent += len(wire)

    def receive(self, timeout: float) -> list[Frame | FrameError]:
        """Whatever frames arrive within `timeout` s, damaged ones as FrameError items;
        returns as soon as at least one has arrived ([] if none)."""
        return self._read_items(time.monotonic() + timeout)

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------

    def _open(self) -> None:
        deadline = time.monotonic() + self.open_timeout
        while True:
            try:
                self._port = _open_port(self.url, self.baudrate,
                                        RFC2217_POLL_S if self._fixed_timeout else self.timeout)
                break
            except (serial.SerialException, ValueError, OSError) as exc:
                # Only a refused or not-yet-ready connection can heal (an emulator still
                # starting); a bad URL or a missing device fails at once.
                problem = _open_problem(self.url, exc)
                if problem or time.monotonic() > deadline:
                    raise UserError(problem or f"cannot open {self.url}: nothing answers there "
                                    f"({_reason(exc)}); start the board (`make flash`) or "
                                    f"give the port it listens on") from None
                time.sleep(0.05)
        self._reader.reset()
        self._inbox.clear()

    def read_chunk(self, remaining: float) -> bytes:
        """What arrives within `remaining` s: blocks for the first byte, then takes whatever
        else has arrived (a socket:// port reports at most 1 byte waiting, and byte-wise
        reads are slow). b"" on timeout."""
        if self._fixed_timeout:
            # rfc2217://: pyserial sends every timeout change to the server as a change of
            # the port settings (baud rate, data bits, ...), and ser2net applies it to the
            # device, which loses what was on its way. Keep the timeout and poll instead.
            data = self._port.read(1)
            if data:
                data += self._port.read(self._port.in_waiting)
        else:
            self._port.timeout = remaining
            data = self._port.read(1)
            if data:
                self._port.timeout = 0
                data += self._port.read(1 << 16)
        self.stats.bytes_received += len(data)
        return data

    def _reconnect(self) -> None:
        self.stats.reconnects += 1
        self.close()
        self._open()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % SEQ_LIMIT
        return self._seq

    def _read_items(self, deadline: float) -> list[Frame | FrameError]:
        """Frames (and damaged frames) received before `deadline`; [] on timeout."""
        while not self._inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            data = self.read_chunk(remaining)
            if data:
                self._inbox.extend(self._reader.feed(data))
        items, self._inbox = self._inbox, []
        return items

    def _await(self, seq: int, cmd: int, collected: dict) -> list[Frame]:
        deadline = time.monotonic() + self.timeout
        while True:
            items = self._read_items(deadline)
            if not items:
                self.stats.timeouts += 1
                raise _Retry(f"no complete answer within {self.timeout} s")
            for index, item in enumerate(items):
                if isinstance(item, ConsoleLine):
                    self.console_lines.append(item)  # the boot line, or a reboot's
                    continue
                if isinstance(item, FrameError):
                    self.stats.bad_frames += 1
                    self._inbox = items[index + 1:] + self._inbox
                    raise _Retry(f"damaged frame from the board ({item})")
                if item.cmd == Command.ERROR:
                    code, _req, detail = parse_error(item.payload)
                    if code in LINK_ERRORS and item.seq in (seq, 0xFFFF):
                        self.stats.link_errors += 1
                        self._inbox = items[index + 1:] + self._inbox
                        raise _Retry(f"the board received a damaged request "
                                     f"({error_name(code)})")
                    if item.seq != seq:
                        self.stats.stale_frames += 1
                        continue
                    if code == ErrorCode.BUSY:
                        self.stats.busy += 1
                        self._inbox = items[index + 1:] + self._inbox
                        time.sleep(BUSY_BACKOFF_S)
                        raise _Retry("the board is busy", "BUSY")
                    raise DeviceError(error_name(code), error_message(self.url, cmd, code,
                                                                       detail), detail)
                if item.seq != seq:
                    self.stats.stale_frames += 1
                    continue
                deadline = time.monotonic() + self.timeout  # progress: keep waiting
                done = _collect(cmd, item, collected)
                if done is not None:
                    self._inbox = items[index + 1:] + self._inbox
                    return done

    def _as_batch(self, x, info: DeviceInfo) -> tuple[np.ndarray, bool]:
        x = np.asarray(x)
        if info.input.dtype == np.float32:       # a model that quantizes a float32 input
            if x.dtype != np.float32:
                raise UserError(f"inputs must be float32 (the model on {self.url} quantizes its "
                                f"float32 input itself), got {x.dtype}")
        elif x.dtype == np.uint8:
            # a uint8 input (the model's first QUANTIZE reads it): its bytes; the wire has no
            # element type, so the caller (hil, which reads the model file) knows which it is
            x = np.ascontiguousarray(x).view(np.int8)
        elif x.dtype != np.int8:
            raise UserError(f"inputs must be int8 (quantized with the model's input scale "
                            f"{info.input.scale} and zero point {info.input.zero_point}), "
                            f"got {x.dtype}")
        shape = tuple(info.input.shape)
        if x.shape == shape:
            return x.reshape(1, *shape), True
        if x.ndim == len(shape) + 1 and x.shape[1:] == shape:
            return x, False
        if x.ndim == 2 and x.shape[1] == int(np.prod(shape)):
            return x.reshape(len(x), *shape), False
        raise UserError(f"input of shape {x.shape} does not fit the model on {self.url}, "
                        f"which takes {shape} (or a batch of them)")

    def _assemble_debug(self, frames: list[Frame], layers: list[LayerInfo],
                        info: DeviceInfo) -> DebugResult | None:
        buffers = [bytearray(l.tensor.size) for l in layers]
        filled = [0] * len(layers)
        end = frames[-1]
        for frame in frames[:-1]:
            layer, offset = DEBUG_DATA.unpack_from(frame.payload)
            data = frame.payload[DEBUG_DATA.size:]
            if layer >= len(layers) or offset + len(data) > len(buffers[layer]):
                raise DeviceError("PROTOCOL", f"{self.url} sent DEBUG data outside layer "
                                  f"{layer}'s tensor")
            buffers[layer][offset:offset + len(data)] = data
            filled[layer] += len(data)
        if any(f != l.tensor.size for f, l in zip(filled, layers)):
            return None
        output = np.frombuffer(end.payload, np.int8, info.output.size, 2).copy()
        for l, b in zip(layers, buffers):
            if int(np.prod(l.tensor.shape)) * l.tensor.dtype.itemsize != len(b):
                raise DeviceError("PROTOCOL", f"{self.url}: layer {l.name} has shape "
                                  f"{list(l.tensor.shape)} but {len(b)} bytes; the firmware's "
                                  f"layer table is inconsistent")
        tensors = [LayerTensor(l, l.tensor.decode(np.frombuffer(bytes(b), np.int8)[None])[0])
                   for l, b in zip(layers, buffers)]
        return DebugResult(info.output.decode(output[None])[0], tensors)


_RESPONSE = {
    Command.HELLO: Command.INFO, Command.PING: Command.PONG, Command.LAYER: Command.LAYER_INFO,
    Command.STATS: Command.STATS_DATA, Command.RESET: Command.RESET_ACK,
    Command.EXIT: Command.EXIT_ACK, Command.RAW: Command.RAW_RESULT,
    Command.MONITOR: Command.MONITOR_ACK, Command.STREAM: Command.VERDICTS,
}


def check_raw_fits(info: DeviceInfo, url: str) -> None:
    """UserError when one raw window (or its answer) is larger than a frame of the board."""
    from runner.protocol import RAW_HEADER, RAW_RESULT_HEADER
    need = max(RAW_HEADER.size + 2 * info.input.size,
               RAW_RESULT_HEADER.size + info.input.size + info.output.size)
    if need > info.max_payload:
        raise UserError(f"a raw window of {info.input.size} int16 samples needs {need}-byte "
                        f"frames, but the board at {url} takes {info.max_payload}; use "
                        f"hil.input = \"int8\" or rebuild the harness with a larger "
                        f"PROTO_MAX_PAYLOAD")


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.removeprefix(f"Could not open port ").strip()


def _open_problem(url: str, exc: Exception) -> str | None:
    """A one-line message for an open() failure that retrying will not fix, else None."""
    from drsn_edge.schema import port_problem
    problem = port_problem(url)
    if problem:
        return f"cannot open {url}: {problem}"
    if isinstance(exc, ValueError):
        return f"cannot open {url}: {_reason(exc)}; check the port name or URL"
    if "://" not in url:
        errno = getattr(exc, "errno", None)
        if errno == 2 or "No such file" in str(exc):
            return (f"cannot open serial port {url}: no such device; plug the board in and "
                    f"check the name (ls /dev/ttyACM* /dev/ttyUSB*), or pass --port")
        if errno == 13 or "Permission denied" in str(exc):
            return (f"cannot open serial port {url}: permission denied; add yourself to the "
                    f"dialout group (sudo usermod -aG dialout $USER, then log in again)")
        return f"cannot open serial port {url}: {_reason(exc)}; check the port name"
    return None


def _open_port(url: str, baudrate: int, timeout: float):
    """pyserial's port for `url`, keeping what the board sent before we were ready.

    pyserial's socket:// open() empties the receive buffer right after connecting. QEMU
    (serial wait=on) starts the guest the moment the connection is accepted, so the boot
    self-test line can already be in that buffer and would be thrown away. Real serial
    ports are left as pyserial opens them.
    """
    port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, do_not_open=True)
    if url.startswith("socket://"):
        port.reset_input_buffer = lambda: None     # only during open(); removed below
        try:
            port.open()
        finally:
            del port.reset_input_buffer
    else:
        port.open()
    return port


def _collect(cmd: int, frame: Frame, collected: dict) -> list[Frame] | None:
    """Add one answer frame for request `cmd`; the whole answer once it is complete."""
    if cmd == Command.INFER and frame.cmd == Command.RESULT:
        part, parts = RESULT_PART.unpack_from(frame.payload)
        collected[part] = frame   # a repeat of a part (after a retry) is identical
        if len(collected) == parts:
            return [collected[i] for i in range(parts)]
        return None
    if cmd == Command.DEBUG and frame.cmd == Command.DEBUG_DATA:
        collected[frame.payload[:DEBUG_DATA.size]] = frame
        return None
    if cmd == Command.DEBUG and frame.cmd == Command.DEBUG_END:
        frames = list(collected.values()) + [frame]
        collected.clear()   # a retried DEBUG starts over
        return frames
    if _RESPONSE.get(cmd) == frame.cmd:
        return [frame]
    raise DeviceError("PROTOCOL", f"answer {_command_name(frame.cmd)} does not fit request "
                      f"{_command_name(cmd)}")


def _command_name(cmd: int) -> str:
    try:
        return Command(cmd).name
    except ValueError:
        return f"command 0x{cmd:02X}"


_HINTS = {
    ErrorCode.UNKNOWN_COMMAND: "the firmware does not know this command (older harness? rebuild it: "
                               "make flash)",
    ErrorCode.BAD_LENGTH: "payload length {detail} expected",
    ErrorCode.BAD_SHAPE: "input shape differs from the model's ({detail} bytes per input)",
    ErrorCode.BATCH_TOO_LARGE: "the board takes at most {detail} inputs per request",
    ErrorCode.BUSY: "the model stayed busy (status {detail})",
    ErrorCode.INTERNAL: "the model failed with status {detail}",
    ErrorCode.BAD_HOP: "the hop must be 1..{detail} samples (the window)",
    ErrorCode.BAD_SMOOTHING: "smoothing mode majority or mean over 1..{detail} windows",
    ErrorCode.NOT_STREAMING: "no stream is running; send MONITOR first",
    ErrorCode.STREAM_SHORT: "the stream ended after {detail} samples, before one whole window",
    ErrorCode.NO_LINK: "no semihosting link: the board could not open the pipes (is its emulator "
                       "on another machine?) if detail 0, its link is already on pipes if 1, it is "
                       "a real board (semihosting would halt it) if 2; detail {detail}",
    ErrorCode.PREPROCESS: "the board could not preprocess the raw window: dk_preprocess_s16 "
                          "status {detail}",
}


def error_message(url: str, cmd: int, code, detail: int) -> str:
    if code == ErrorCode.PREPROCESS and detail >= 1 << 31:
        detail -= 1 << 32     # dk_preprocess_s16's statuses are negative
    hint = _HINTS.get(code, "detail {detail}").format(detail=detail)
    return f"{url} rejected {_command_name(cmd)}: {error_name(code)} ({hint})"
