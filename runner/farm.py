"""Many boards in one `drsn-edge hil` run: a board farm.

Every board gets its own thread, link (runner.link.Device) and Streamer. The vectors still
to verify are cut into batches once, and the batches wait in one shared queue; a board takes
the next batch whenever it has room for another request in flight, so a fast board simply
takes more. Results land by vector index, so the merged outputs (and everything the report
derives from them) do not depend on how many boards ran or in which order they answered.

A board is checked before it gets any work: it must open, answer INFO, be the board type
`drsn-edge flash` recorded (if it did) and run the current model (its hash). A board that
fails then, or later (crashes, hangs, drops its link, cannot be reopened), is marked failed
with the reason; the batches it held and had not completed go back to the front of the
queue for the others. A board that has run out of work waits while other boards still hold
batches, since a failure there puts them back. Only when every board has failed does the run
fail (hil.py raises one line naming each board and what happened).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import serial

from drsn_edge.errors import UserError
from runner.stream import Streamer

# Exceptions that mean "this board failed", as opposed to a bug in the host code.
BOARD_ERRORS = (UserError, serial.SerialException, OSError)


@dataclass
class Board:
    index: int
    target: object                 # runner.hil.Target
    dev: object | None = None      # runner.link.Device once open
    info: object | None = None     # its DeviceInfo once checked
    seen: object | None = None     # the DeviceInfo of a board refused (another model, ...)
    depth: int = 1
    failed: str | None = None      # why it dropped out, None while it is fine
    vectors: int = 0               # vectors it answered (and that were kept)
    requeued: int = 0              # vectors it held when it failed, handed to the others
    seconds: float = 0.0           # from its first request to its last answer or failure
    link: dict = field(default_factory=dict)
    counters: dict | None = None   # the firmware's counters over the run (None if failed)
    quiet_keys: list = field(default_factory=list)
    code: str | None = None        # DeviceError code of the failure (TIMEOUT, FAULT, ...)
    error: BaseException | None = None   # an unexpected (host) exception, re-raised later

    @property
    def url(self) -> str:
        return self.target.url


def open_boards(targets, h: dict, model: bytes, model_file, connect, check) -> list[Board]:
    """Open and check every board at once (an unreachable one takes seconds to give up)."""
    boards = [Board(i, t) for i, t in enumerate(targets)]

    def open_one(b: Board) -> None:
        if getattr(b.target, "problem", None):
            b.failed = b.target.problem
            return
        try:
            b.dev = connect(b.target, h)
            b.info = check(b.dev, model, model_file, b.target)
        except BOARD_ERRORS as exc:
            b.failed = str(exc)
            if b.dev is not None:
                b.seen = b.dev._info    # what a refused board said it is, for the report
                b.dev.close()
                b.dev = None

    threads = [threading.Thread(target=open_one, args=(b,), daemon=True) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return boards


def all_failed(boards: list[Board]) -> str:
    """One line: what happened to each board."""
    if len(boards) == 1:
        return boards[0].failed or "the board failed"
    return f"all {len(boards)} boards failed: " + "; ".join(
        f"[{b.url}] {b.failed}" for b in boards)


class Farm:
    """Runs the batches of `todo` (ranges of vector indices) over the ready boards."""

    def __init__(self, boards: list[Board], x: np.ndarray, batches, done: np.ndarray,
                 out: np.ndarray, work: np.ndarray, progress=None, save=None,
                 save_every_s: float = 5.0, raw: dict | None = None):
        """raw: {"pre_in": ..., "pre_work": ...} to send RAW windows (x int16) and keep the
        int8 input and preprocessing work each board reports; None sends INFER batches."""
        self.boards = [b for b in boards if b.failed is None]
        self.x = x
        self.raw = raw
        self.queue: deque[range] = deque(batches)
        self.done, self.out, self.work = done, out, work
        self.answers = np.zeros(len(done), np.int32)   # answers kept or dropped per vector
        self.who = np.full(len(done), -1, np.int32)    # the board that answered each vector
        self.cond = threading.Condition()
        self.inflight = 0
        self.abort = threading.Event()
        self.progress = progress
        self.save = save
        self.save_every_s = save_every_s
        self._saved = time.monotonic()

    @property
    def duplicated(self) -> int:
        return int(np.sum(self.answers > 1))

    def run(self) -> None:
        threads = [threading.Thread(target=self._work, args=(b,), daemon=True,
                                    name=f"hil-board-{b.index}") for b in self.boards]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except BaseException:
            # Ctrl-C: hand out nothing more; each board finishes what it holds.
            self.abort.set()
            with self.cond:
                self.cond.notify_all()
            for t in threads:
                t.join(10)
            raise
        for b in self.boards:
            if b.error is not None:
                raise b.error

    # --- one board ---------------------------------------------------------------------

    def _source(self, held: dict):
        while not self.abort.is_set():
            with self.cond:
                if not self.queue:
                    return
                key = self.queue.popleft()
                held[key.start] = key
                self.inflight += 1
            yield key, self.x[key.start:key.stop]

    def _work(self, b: Board) -> None:
        streamer = Streamer(b.dev, b.depth, board_hint=b.target.restart_hint(),
                            raw=self.raw is not None)
        held: dict[int, range] = {}
        t0 = time.perf_counter()
        try:
            before = b.dev.board_stats()
            while True:
                for key, o, w, *pre in streamer.run(self._source(held)):
                    with self.cond:
                        held.pop(key.start, None)
                        self.inflight -= 1
                        self._store(b, key, o, w, pre)
                        self.cond.notify_all()
                with self.cond:
                    # Out of work, but another board may still fail and give some back.
                    while not self.queue and self.inflight > 0 and not self.abort.is_set():
                        self.cond.wait(0.5)
                    if not self.queue or self.abort.is_set():
                        break
            b.seconds = time.perf_counter() - t0
            after = b.dev.board_stats()
            b.counters = {k: after[k] - before[k] for k in after}
        except Exception as exc:  # noqa: BLE001 - a board's failure must not stop the others
            b.seconds = time.perf_counter() - t0
            b.failed = str(exc) if isinstance(exc, BOARD_ERRORS) else f"{type(exc).__name__}: {exc}"
            b.code = getattr(exc, "code", "FAILED")
            if not isinstance(exc, BOARD_ERRORS):
                b.error = exc
            with self.cond:
                for key in sorted(held.values(), key=lambda r: r.start, reverse=True):
                    self.queue.appendleft(key)
                    b.requeued += len(key)
                self.inflight -= len(held)
                held.clear()
                self.cond.notify_all()
        finally:
            b.link = vars(b.dev.stats).copy()
            b.quiet_keys = list(streamer.quiet_keys)
            b.dev.close()

    def _store(self, b: Board, key: range, o: np.ndarray, w: np.ndarray, pre=()) -> None:
        """Called with the lock held."""
        sl = slice(key.start, key.stop)
        self.answers[sl] += 1
        if self.done[sl].any():
            return                      # counted as duplicated; the first answer stays
        self.out[sl] = o
        self.work[sl] = w
        if self.raw is not None:
            self.raw["pre_in"][sl] = pre[0]
            self.raw["pre_work"][sl] = pre[1]
        self.done[sl] = True
        self.who[sl] = b.index
        b.vectors += len(key)
        if self.progress is not None:
            self.progress(len(key))
        if self.save is not None and time.monotonic() - self._saved > self.save_every_s:
            self.save()
            self._saved = time.monotonic()
