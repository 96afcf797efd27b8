"""INFER batches (or RAW windows) with more than one request in flight, over a
runner.link.Device.

Device.infer is stop-and-wait, so the link idles while the board computes and the board
idles while the next request crosses the link. Here the next request is already on its way
while the board runs the current one; the board layer buffers it under interrupt
(boards/common/board.c), so transfer and inference overlap.

What keeps a lossy link from losing or duplicating a result:
- every batch stays pending until its complete RESULT has arrived, and is taken once: a
  second answer to the same seq (after a resend) is dropped as stale;
- the board answers requests in the order they arrive, so when a request's answer is
  complete, every pending request sent before it has lost its request or its answer on
  the way, and is sent again;
- a request the board reports damaged (ERROR BAD_CRC / BAD_FRAME with its seq) is sent
  again at once; when a damaged frame or an ERROR without a readable seq arrives, the
  oldest pending request is sent again, unless its last copy went out so recently that
  its answer cannot be due yet (the damage then hit an earlier copy's answer);
- when nothing at all has arrived for `timeout` seconds, every pending request is sent
  again, oldest first; any frame counts as a sign of life, even a repeat, so a board that
  is still working through resent requests is not flooded with more;
- a dropped connection is reopened and every pending request sent again.
The board answers a repeat of its last request from its stored response, and runs an older
one again; inference is deterministic, so a resend never changes an answer.

Board faults end the run with a DeviceError naming them: the fault report the board prints
before it stops ("FAULT HardFault pc=..."), a boot line in the middle of a run (the board
restarted: watchdog, brown-out, reset button), or no answer through all retries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Iterator

import numpy as np
import serial

from drsn_edge.errors import UserError
from runner.link import BUSY_BACKOFF_S, Device, DeviceError, LinkTimeout
from runner.protocol import (
    LINK_ERRORS, RESULT_PART, SEQ_UNKNOWN, Command, ConsoleLine, ErrorCode, Frame,
    FrameError, encode_frame, error_name, infer_payload, parse_error, parse_raw_result,
    parse_result, raw_payload,
)

# The text the board's fault handler prints (boards/common/startup.c) and the start of
# its boot line (firmware_gen/harness/main.c).
FAULT_MARK = b"FAULT "
BOOT_MARK = "drsn-edge"
_TAIL_BYTES = 512


@dataclass
class _Request:
    key: Hashable
    count: int
    wire: bytes
    parts: dict = field(default_factory=dict)
    sends: int = 0
    sent: int = 0          # when it was last sent, in sends over the whole link
    sent_at: float = 0.0   # and in time.monotonic() seconds


class Streamer:
    """Runs batches through `dev` with up to `depth` requests in flight.

    depth=1 is stop-and-wait. More needs a board that buffers received bytes (the drsn-edge
    board layer does) or a link with flow control (QEMU's socket serial has it); a real UART
    without either drops the bytes that arrive while the board computes.

    The first request is always sent alone, so the work counts of its vectors are measured
    with nothing arriving during the inference (received bytes cost the board interrupt
    instructions, which the work counter would include): see `quiet_keys`.

    raw=True sends RAW requests instead: each batch is one window of int16 samples (shape
    (1, input size)), and run() yields (key, outputs, work, inputs, preprocess_work), the
    int8 inputs being what the board's preprocessing made of the window.
    """

    def __init__(self, dev: Device, depth: int = 2, board_hint: str = "", raw: bool = False):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.dev = dev
        self.depth = depth
        self.board_hint = board_hint   # appended to fault messages: how to restart
        self.raw = raw
        self.quiet_keys: list[Hashable] = []
        self._tail = bytearray()
        self._pending: OrderedDict[int, _Request] = OrderedDict()
        self._done = 0
        self._sends = 0
        self._latency: float | None = None   # typical send-to-answer time of a request

    # --- public ---------------------------------------------------------------------

    def run(self, batches: Iterable[tuple[Hashable, np.ndarray]]
            ) -> Iterator[tuple[Hashable, np.ndarray, np.ndarray]]:
        """Yield (key, outputs, work) for each (key, int8 batch), in completion order (raw:
        (key, outputs, work, inputs, preprocess_work) for each (key, int16 window))."""
        info = self.dev.info()
        source = iter(batches)
        exhausted = False
        last_heard = time.monotonic()
        while True:
            while not exhausted and len(self._pending) < self._window():
                try:
                    key, batch = next(source)
                except StopIteration:
                    exhausted = True
                    break
                self._submit(key, batch, info)
            if not self._pending:
                return
            items = self._read(last_heard + self.dev.timeout)
            if not items:
                self._on_silence()
                last_heard = time.monotonic()
                continue
            damaged = False
            for item in items:
                if isinstance(item, FrameError):
                    self.dev.stats.bad_frames += 1
                    damaged = True
                elif isinstance(item, ConsoleLine):
                    self._on_console(str(item))
                else:
                    last_heard = time.monotonic()
                    outcome = self._on_frame(item, info)
                    if outcome == "unknown":
                        damaged = True
                    elif isinstance(outcome, tuple):
                        yield outcome
            if damaged and self._pending:
                oldest = next(iter(self._pending.values()))
                if self._latency is None or \
                        time.monotonic() - oldest.sent_at > 0.75 * self._latency:
                    self._send(oldest, "its answers kept arriving damaged")

    # --- requests ---------------------------------------------------------------------

    def _window(self) -> int:
        return 1 if self._done == 0 else self.depth

    def _submit(self, key, batch: np.ndarray, info) -> None:
        batch = np.ascontiguousarray(batch)
        seq = self.dev._next_seq()
        if self.raw:
            if len(batch) != 1 or batch.dtype != np.int16 or batch[0].size != info.input.size:
                raise UserError(f"a RAW request is one window of {info.input.size} int16 "
                                f"samples, got {batch.shape} {batch.dtype}")
            wire = encode_frame(seq, Command.RAW, raw_payload(batch[0]))
        else:
            if len(batch) > info.max_batch:
                raise UserError(f"a batch of {len(batch)} exceeds the board's largest "
                                f"({info.max_batch})")
            wire = encode_frame(seq, Command.INFER, infer_payload(batch))
        req = _Request(key, len(batch), wire)
        self._pending[seq] = req
        self.dev.stats.requests += 1
        self._send(req)

    def _send(self, req: _Request, why: str | None = None) -> None:
        """Send `req`; with `why`, as a retry (which may be the last allowed)."""
        if why is not None:
            self.dev.stats.retries += 1
            if req.sends > self.dev.retries:
                raise LinkTimeout("TIMEOUT", self._no_answer(req, why))
        req.sends += 1
        self._sends += 1
        req.sent = self._sends
        req.sent_at = time.monotonic()
        try:
            self.dev.write(req.wire)
        except serial.SerialException as exc:
            self._on_disconnect(exc)

    def _resend_all(self, why: str) -> None:
        for req in list(self._pending.values()):
            self._send(req, why)

    # --- what arrives -----------------------------------------------------------------

    def _read(self, deadline: float) -> list:
        """Frames, damaged frames and console lines received before `deadline`."""
        dev = self.dev
        if dev._inbox:
            items, dev._inbox = dev._inbox, []
            return items
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            try:
                data = dev.read_chunk(remaining)
            except serial.SerialException as exc:
                self._on_disconnect(exc)
                return []
            if data:
                self._tail = (self._tail + data)[-_TAIL_BYTES:]
                items = dev._reader.feed(data)
                if items:
                    return items
            self._check_fault()

    def _on_frame(self, frame: Frame, info):
        """A result tuple when a batch completed, "unknown" for an ERROR about a request it
        could not read, True for progress on a pending request, None for a stale frame."""
        req = self._pending.get(frame.seq)
        if frame.cmd == Command.ERROR:
            code, _cmd, detail = parse_error(frame.payload)
            if code in LINK_ERRORS:
                self.dev.stats.link_errors += 1
                if req is not None:
                    self._send(req, "the board kept receiving it damaged")
                    return True
                return "unknown" if frame.seq == SEQ_UNKNOWN else None
            if req is None:
                self.dev.stats.stale_frames += 1
                return None
            if code == ErrorCode.BUSY:
                self.dev.stats.busy += 1
                time.sleep(BUSY_BACKOFF_S)
                self._send(req, "the board stayed busy")
                return True
            if code == ErrorCode.PREPROCESS and detail >= 1 << 31:
                detail -= 1 << 32
            raise DeviceError(error_name(code), f"{self.dev.url} rejected the "
                              f"{'RAW' if self.raw else 'INFER'} of {_describe(req.key)}: "
                              f"{error_name(code)} (detail {detail})", detail)
        if req is None:
            self.dev.stats.stale_frames += 1
            return None
        expected = Command.RAW_RESULT if self.raw else Command.RESULT
        if frame.cmd != expected:
            raise DeviceError("PROTOCOL", f"{self.dev.url} answered {'RAW' if self.raw else 'INFER'} "
                              f"with command 0x{frame.cmd:02X}")
        extra = ()
        if self.raw:
            try:
                r = parse_raw_result(frame.payload, info.input.size, info.output.size)
            except FrameError as exc:
                raise DeviceError("PROTOCOL", f"{self.dev.url}: {exc}") from None
            out, work = r.output[None], np.array([r.work], np.uint64)
            extra = (r.input[None], np.array([r.preprocess_work], np.uint64))
        else:
            part, parts = RESULT_PART.unpack_from(frame.payload)
            req.parts[part] = frame.payload[RESULT_PART.size:]
            if len(req.parts) < parts:
                return True
            body = b"".join(req.parts[i] for i in range(parts))
            try:
                out, work = parse_result(body, info.output.size)
            except (FrameError, KeyError) as exc:
                raise DeviceError("PROTOCOL", f"{self.dev.url}: {exc}") from None
        if len(out) != req.count:
            raise DeviceError("PROTOCOL", f"{self.dev.url} answered {len(out)} outputs for "
                              f"{req.count} inputs")
        del self._pending[frame.seq]
        took = time.monotonic() - req.sent_at
        self._latency = took if self._latency is None else 0.8 * self._latency + 0.2 * took
        if self._done == 0:
            self.quiet_keys.append(req.key)
        self._done += 1
        # Answered in order: whatever was sent before this and is still pending was lost.
        for older in [r for r in self._pending.values() if r.sent < req.sent]:
            self._send(older, "its answers kept getting lost")
        return (req.key, info.output.decode(out.reshape(req.count, -1)), work, *extra)

    def _on_console(self, line: str) -> None:
        if line.startswith(BOOT_MARK):
            oldest = next(iter(self._pending.values()), None)
            where = f", while it had {_describe(oldest.key)}" if oldest else ""
            raise DeviceError("RESET", f"the board restarted during the run{where} (a watchdog "
                              f"reset, brown-out or the reset button); it printed: {line!r}."
                              f"{self.board_hint}")
        self.dev.console_lines.append(line)

    def _on_silence(self) -> None:
        self.dev.stats.timeouts += 1
        self._check_fault(final=True)
        self._resend_all(f"nothing arrived within {self.dev.timeout} s each time")

    def _on_disconnect(self, exc: Exception) -> None:
        self._check_fault(final=True)
        try:
            self.dev._reconnect()
        except UserError as reopen:
            oldest = next(iter(self._pending.values()), None)
            where = f" while it had {_describe(oldest.key)}" if oldest else ""
            raise DeviceError("DISCONNECTED", f"lost the connection to {self.dev.url}{where} "
                              f"({exc}) and could not reopen it: {reopen}.{self.board_hint}"
                              ) from None
        self._tail.clear()
        self._resend_all("the connection kept dropping")

    def _check_fault(self, final: bool = False) -> None:
        """Raise if the board has printed a fault report; unless `final`, only once the
        report's line is complete."""
        at = self._tail.find(FAULT_MARK)
        if at < 0 or (not final and b"\n" not in self._tail[at:]):
            return
        line = bytes(self._tail[at:])
        report = line.split(b"\n")[0].decode("ascii", "replace").strip()
        oldest = next(iter(self._pending.values()), None)
        where = f" while running {_describe(oldest.key)}" if oldest else ""
        if b"\n" in line:
            fields = "the pc and cfsr fields say where and why"
        else:
            # An emulator that exits with input still unread resets the connection, and
            # the end of its last output can go with it.
            fields = "the rest of the report was lost with the link"
        raise DeviceError("FAULT", f"the board crashed{where}: {report}. The firmware "
                          f"stopped; {fields}.{self.board_hint}")

    def _no_answer(self, req: _Request, why: str) -> str:
        return (f"no usable answer from {self.dev.url} for {_describe(req.key)} after "
                f"{req.sends} attempts ({why}); the board may hang in the model or the link "
                f"may be down.{self.board_hint}")


def _describe(key) -> str:
    if isinstance(key, range):
        return f"vectors {key.start}..{key.stop - 1}" if len(key) > 1 else f"vector {key.start}"
    return f"batch {key!r}"
