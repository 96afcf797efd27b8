"""The board protocol: framing in pure Python, then the firmware harness in QEMU with a
small test model (tests/firmware/test_model.c) whose outputs reference_model() reproduces
bit for bit: INFO, INFER single and batched, DEBUG dumps, every ERROR code, a fuzz run of
malformed frames, all four boards, and a lossy link with a disconnect in the middle."""

import random
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import boards
from drsn_edge.errors import UserError
from firmware_gen.build import HARNESS_INCLUDE_DIRS, HARNESS_SOURCES
from runner import protocol as proto
from runner.link import Device, DeviceError
from runner.protocol import Command, ErrorCode

ROOT = Path(__file__).resolve().parent.parent
TEST_MODEL = Path(__file__).resolve().parent / "firmware" / "test_model.c"
SOURCES = [*HARNESS_SOURCES, TEST_MODEL]
TEST_MODEL_HASH = bytes.fromhex(
    "5e3db8c40dc181f170d22e4a04582552b0f5f38112f2f7cfc45668305c61274b")
MAX_PAYLOAD = 4096
FRAME_MAX = 5 + MAX_PAYLOAD + 4


def reference_model(x, positions=4):
    """test_model.c in numpy: int8 (n, IN) -> (output (n, P, 4), dense z, tau (n, 4))."""
    x = np.asarray(x, np.int64).reshape(len(x), -1)
    j = np.arange(positions * 4)
    i = np.arange(x.shape[1])
    w = (7 * i[None, :] + 13 * j[:, None]) % 17 - 8
    acc = x @ w.T + (100 * j - 800)
    z = np.clip(((acc * 77 + (1 << 14)) >> 15) + 3, -128, 127).reshape(len(x), positions, 4)
    d = z - 3
    tau = np.minimum(127, np.abs(d).sum(axis=1) >> 3)
    m = np.maximum(np.abs(d) - tau[:, None, :], 0)
    y = np.clip(3 + np.sign(d) * m, -128, 127)
    return y.astype(np.int8), z.astype(np.int8), tau.astype(np.int8)


def random_inputs(rng, n, size=1024):
    return rng.integers(-128, 128, (n, size, 1), dtype=np.int8)


def build(board, tmp_path_factory, defines=()):
    out = tmp_path_factory.mktemp(f"harness-{board}") / "fw.elf"
    return boards.compile_firmware(board, SOURCES, HARNESS_INCLUDE_DIRS, out, defines=defines)


# --- pure Python: framing -----------------------------------------------------------------

def test_cobs_round_trips_and_never_emits_zero():
    rng = random.Random(1)
    cases = [b"", b"\0", b"\0\0", b"\x01", bytes(253), bytes(254), bytes(255),
             bytes(range(1, 255)), bytes(range(1, 256)), b"\xff" * 254, b"\xff" * 255,
             b"\xff" * 508, b"\xff" * 509, b"\0" + b"\x01" * 254 + b"\0"]
    for n in list(range(0, 600)) + [4105, 10000]:
        zero_rate = rng.choice([0.0, 0.01, 0.3, 1.0])
        cases.append(bytes(0 if rng.random() < zero_rate else rng.randrange(1, 256)
                           for _ in range(n)))
    for data in cases:
        encoded = proto.cobs_encode(data)
        assert 0 not in encoded
        assert len(encoded) <= len(data) + len(data) // 254 + 1
        assert proto.cobs_decode(encoded) == data


def test_cobs_known_vectors():
    assert proto.cobs_encode(b"") == b"\x01"
    assert proto.cobs_encode(b"\0") == b"\x01\x01"
    assert proto.cobs_encode(b"\x11\x22\0\x33") == b"\x03\x11\x22\x02\x33"
    assert proto.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255))
    assert proto.cobs_encode(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"
    with pytest.raises(proto.FrameError):
        proto.cobs_decode(b"\x05\x01")   # block promises 4 bytes, 1 present


def test_frame_crc_is_zlib_crc32_and_damage_is_detected():
    raw = proto.pack_frame(0x1234, Command.PING, b"hello")
    assert raw[:5] == struct.pack("<HHB", 5, 0x1234, Command.PING)
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])
    assert proto.parse_frame(raw) == proto.Frame(0x1234, Command.PING, b"hello")
    for i in range(len(raw)):
        damaged = bytearray(raw)
        damaged[i] ^= 0x10
        with pytest.raises(proto.FrameError):
            proto.parse_frame(bytes(damaged))


def test_reader_resynchronises_after_garbage():
    rng = random.Random(2)
    good = [proto.encode_frame(i, Command.PONG, bytes(rng.randrange(256) for _ in range(i * 37)))
            for i in range(20)]
    stream = bytearray()
    for frame in good:
        stream += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 50)))  # garbage
        stream += frame
    reader = proto.FrameReader(proto.max_encoded_bytes(MAX_PAYLOAD))
    items = []
    for start in range(0, len(stream), 97):   # arbitrary chunking
        items += reader.feed(bytes(stream[start:start + 97]))
    frames = [item for item in items if isinstance(item, proto.Frame)]
    assert [f.seq for f in frames] == list(range(20))
    assert all(isinstance(i, proto.FrameError) for i in items if not isinstance(i, proto.Frame))
    # An endless run without a delimiter costs bounded memory and one error.
    reader = proto.FrameReader(100)
    assert reader.feed(b"\x01" * 10_000) == []
    (error, frame) = reader.feed(b"\0" + proto.encode_frame(7, Command.PONG)[1:])
    assert isinstance(error, proto.FrameError) and frame.seq == 7


# --- the harness in QEMU ------------------------------------------------------------------

@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    return build(boards.DEFAULT_BOARD, tmp_path_factory)


@pytest.fixture(scope="module", params=["socket", "semihost"])
def device(elf, request):
    """The board over its UART (socket://), and over the semihosting pipes (semihost://):
    every test of the protocol runs on both links."""
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu:
        with Device(emu.url.replace("socket://", f"{request.param}://"), timeout=3.0) as dev:
            yield dev


def test_info_reports_board_model_and_limits(device):
    info = device.info()
    assert info.protocol_version == proto.PROTO_VERSION
    assert info.board == "mps2-an386" and info.firmware_version == "0.1.0"
    assert info.model_name == "test-dense-shrink" and info.model_hash == TEST_MODEL_HASH
    assert info.input.shape == (1024, 1) and info.input.size == 1024
    assert info.input.scale == 1 / 64 and info.input.zero_point == -1
    assert info.output.shape == (4, 4) and info.output.size == 16
    assert info.output.scale == pytest.approx(0.05) and info.output.zero_point == 3
    assert info.arena_bytes == 20 and info.layer_count == 3 and info.model_status == 0
    assert info.max_payload == MAX_PAYLOAD and info.max_batch == 3   # (4096 - 11) // 1024
    assert info.work_unit == "instructions"


def test_infer_single_and_batch_are_bit_exact(device):
    rng = np.random.default_rng(3)
    x = random_inputs(rng, 10)    # 10 inputs: four requests of at most 3
    extremes = np.stack([np.full((1024, 1), v, np.int8) for v in (-128, 127, 0)])
    x = np.concatenate([x, extremes])
    outputs, work = device.infer(x)
    expected, _, _ = reference_model(x)
    assert outputs.dtype == np.int8 and outputs.shape == (13, 4, 4)
    np.testing.assert_array_equal(outputs, expected)
    single, single_work = device.infer(x[0])
    np.testing.assert_array_equal(single, expected[0])
    assert isinstance(single_work, int) and single_work > 0
    flat, _ = device.infer(x[:2].reshape(2, 1024))
    np.testing.assert_array_equal(flat, expected[:2])
    assert work.dtype == np.uint64 and (work > 0).all()


def test_work_counter_is_identical_for_identical_requests(device):
    x = random_inputs(np.random.default_rng(4), 3)
    _, first = device.infer(x)
    _, second = device.infer(x)
    np.testing.assert_array_equal(first, second)
    # ~1024 * 16 multiply-accumulates at a handful of instructions each
    assert 16_384 < first[0] < 1_000_000


def test_debug_dumps_every_layer_and_the_thresholds(device):
    x = random_inputs(np.random.default_rng(5), 1)
    dump = device.debug(x[0])
    y, z, tau = reference_model(x)
    assert [t.info.name for t in dump.layers] == ["dense", "shrink/tau", "shrink/out"]
    np.testing.assert_array_equal(dump.activations["dense"], z[0])
    np.testing.assert_array_equal(dump.thresholds["shrink/tau"], tau[0])
    np.testing.assert_array_equal(dump.activations["shrink/out"], y[0])
    np.testing.assert_array_equal(dump.output, y[0])
    assert dump.layers[1].info.kind == "threshold" and dump.layers[1].info.tensor.shape == (4,)


def raw_exchange(device, wire):
    """Send bytes as they are; the one frame that answers them."""
    device.send_raw(wire)
    items = device.receive(timeout=3)
    assert len(items) == 1, items
    return items[0]


def error_of(item):
    assert isinstance(item, proto.Frame) and item.cmd == Command.ERROR, item
    return proto.parse_error(item.payload)


def infer_header(batch, shape):
    return struct.pack("<H", batch) + proto.shape_header(shape)


def test_every_error_code_is_reported(device):
    x = random_inputs(np.random.default_rng(6), 1)[0]
    cases = {
        ErrorCode.UNKNOWN_COMMAND: (0x42, b""),
        ErrorCode.BAD_LENGTH: (Command.INFER, infer_header(1, (1024, 1)) + x.tobytes()[:-1]),
        ErrorCode.BAD_SHAPE: (Command.INFER, infer_header(1, (512, 2)) + x.tobytes()),
        ErrorCode.BATCH_TOO_LARGE: (Command.INFER, infer_header(4, (1024, 1)) + bytes(4096 - 11)),
    }
    for code, (cmd, payload) in cases.items():
        with pytest.raises(DeviceError) as info:
            device.request(cmd, payload)
        assert info.value.code == code.name
    with pytest.raises(DeviceError, match="BAD_SHAPE"):
        device.request(Command.LAYER, struct.pack("<H", 3))   # no such layer
    with pytest.raises(DeviceError, match="BAD_LENGTH"):
        device.request(Command.HELLO, b"x")

    busy = x.copy()
    busy[:4, 0] = np.frombuffer(b"BUSY", np.int8)
    fail = x.copy()
    fail[:4, 0] = np.frombuffer(b"FAIL", np.int8)
    retries, device.retries = device.retries, 1
    try:
        with pytest.raises(DeviceError) as info:
            device.infer(busy)
        assert info.value.code == "BUSY"
    finally:
        device.retries = retries
    with pytest.raises(DeviceError) as info:
        device.infer(fail)
    assert info.value.code == "INTERNAL" and info.value.detail == 42

    # Link-level damage, sent raw because Device would quietly retry these.
    good = proto.pack_frame(100, Command.PING, b"abc")
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    assert error_of(raw_exchange(device, b"\0" + proto.cobs_encode(bad_crc) + b"\0"))[0] \
        == ErrorCode.BAD_CRC
    wrong_len = bytearray(good)
    wrong_len[0] = 4
    wrong_len[-4:] = struct.pack("<I", zlib.crc32(bytes(wrong_len[:-4])))
    assert error_of(raw_exchange(device, proto.cobs_encode(bytes(wrong_len)) + b"\0"))[0] \
        == ErrorCode.BAD_LENGTH
    too_long = proto.encode_frame(101, Command.PING, bytes(MAX_PAYLOAD + 1))
    code, _, detail = error_of(raw_exchange(device, too_long))
    assert code == ErrorCode.FRAME_TOO_LONG and detail == FRAME_MAX
    assert error_of(raw_exchange(device, b"\x05\x01\0"))[0] == ErrorCode.BAD_FRAME
    assert error_of(raw_exchange(device, b"\x03\x01\x02\0"))[0] == ErrorCode.BAD_FRAME
    assert device.ping(b"still here") < 1


def test_repeated_seq_is_answered_from_the_stored_response(device):
    x = random_inputs(np.random.default_rng(7), 2)
    before = device.board_stats()
    wire = proto.encode_frame(777, Command.INFER, proto.infer_payload(x))
    answers = [raw_exchange(device, wire) for _ in range(3)]
    after = device.board_stats()
    assert answers[0] == answers[1] == answers[2]
    assert after["invocations"] - before["invocations"] == 2      # ran once, not three times
    assert after["retransmissions"] - before["retransmissions"] == 2
    # The same seq with a different request is new work, not a repeat.
    other = raw_exchange(device, proto.encode_frame(777, Command.INFER, proto.infer_payload(x[::-1])))
    assert other.payload != answers[0].payload


def fuzz_frames(rng, info):
    """(category, wire bytes, expected error codes) for malformed frames, one frame each."""
    def seq():
        return rng.randrange(0xFFFF)

    def frame(cmd, payload):
        return proto.encode_frame(seq(), cmd, payload)[1:]   # each case gets one delimiter

    requests = set(int(c) for c in Command if c < 0x80)
    for _ in range(4005):
        noise = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 24)))
        yield "random", noise + b"\0", {ErrorCode.BAD_FRAME, ErrorCode.BAD_CRC}
    for _ in range(2000):
        raw = bytearray(proto.pack_frame(seq(), rng.choice([1, 2, 3, 5]),
                                         bytes(rng.randrange(256) for _ in range(rng.randrange(8)))))
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        yield "bad_crc", proto.cobs_encode(bytes(raw)) + b"\0", {ErrorCode.BAD_CRC}
    for _ in range(2000):
        encoded = frame(Command.PING, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))))
        cut = rng.randrange(1, len(encoded) - 1)
        yield "truncated", encoded[:cut] + b"\0", {ErrorCode.BAD_FRAME, ErrorCode.BAD_CRC}
    for _ in range(5):
        yield "oversized", frame(Command.PING, bytes(rng.randrange(MAX_PAYLOAD + 1, 4400))), \
            {ErrorCode.FRAME_TOO_LONG}
    for _ in range(1000):
        dims = rng.choice([(1024,), (512, 2), (1024, 2), (1, 1024), (1024, 1, 1), ()])
        yield "wrong_shape", frame(Command.INFER, infer_header(rng.randrange(1, 4), dims)), \
            {ErrorCode.BAD_SHAPE}
    for _ in range(500):
        batch = rng.choice([0, 4, 5, 1000, 0xFFFF])
        yield "batch_too_large", frame(Command.INFER, infer_header(batch, (1024, 1))), \
            {ErrorCode.BATCH_TOO_LARGE}
    for _ in range(1000):
        cmd = rng.choice([c for c in range(256) if c not in requests])
        yield "unknown_command", frame(cmd, bytes(rng.randrange(8))), {ErrorCode.UNKNOWN_COMMAND}
    for _ in range(500):
        cmd, payload = rng.choice([(Command.HELLO, b"\1"), (Command.STATS, b"\1\2"),
                                   (Command.LAYER, b"\0"), (Command.EXIT, b"\0\0"),
                                   (Command.INFER, infer_header(2, (1024, 1)) + bytes(1024))])
        yield "wrong_length", frame(cmd, payload), {ErrorCode.BAD_LENGTH}


def test_fuzzing_with_malformed_frames_leaves_the_board_correct(device):
    rng = random.Random(8)
    cases = list(fuzz_frames(rng, device.info()))
    rng.shuffle(cases)
    sent, answered, unexpected = {}, {}, []
    # In chunks small enough that neither direction's socket buffers fill while the other
    # side is not reading; each malformed frame gets exactly one ERROR.
    chunk, chunk_bytes = [], 0
    for i, case in enumerate(cases):
        chunk.append(case)
        chunk_bytes += len(case[1])
        if chunk_bytes < 8000 and i < len(cases) - 1:
            continue
        device.send_raw(b"".join(wire for _, wire, _ in chunk))
        replies = []
        while len(replies) < len(chunk):
            items = device.receive(timeout=5)
            assert items, f"board stopped answering after {len(replies)} of {len(chunk)}"
            replies += items
        assert len(replies) == len(chunk)
        for (category, _, expected), reply in zip(chunk, replies):
            sent[category] = sent.get(category, 0) + 1
            code = error_of(reply)[0]
            answered[code.name] = answered.get(code.name, 0) + 1
            if code not in expected:
                unexpected.append((category, code))
        chunk, chunk_bytes = [], 0
    total = sum(sent.values())
    print(f"\nfuzz: {total} malformed frames; sent {sent}; "
          f"errors {answered}; board stats {device.board_stats()}")
    assert total >= 10_000 and not unexpected
    x = random_inputs(np.random.default_rng(9), 30)
    outputs, work = device.infer(x)
    np.testing.assert_array_equal(outputs, reference_model(x)[0])
    assert (work > 0).all()


def test_a_batched_run_over_the_emulated_link_needs_no_retries(device):
    """30 inputs of 1024 bytes over the clean emulated link: every answer correct and the
    first attempt of every request answered in time. (The rate is measured by `drsn-edge
    hil`, which reports vectors_per_second; tests do not time anything.)"""
    x = random_inputs(np.random.default_rng(10), 30)
    before = dict(vars(device.stats))
    outputs, _ = device.infer(x)
    np.testing.assert_array_equal(outputs, reference_model(x)[0])
    after = vars(device.stats)
    assert after["requests"] > before["requests"]
    for what in ("retries", "timeouts", "bad_frames", "reconnects"):
        assert after[what] == before[what], what


def test_reset_restarts_the_firmware(device):
    for _ in range(11):   # this test alone (or after others) leaves the counter above 10
        device.ping(b"before")
    assert device.board_stats()["frames"] > 10
    device.reset()
    time.sleep(0.2)
    # Counters start over: a fresh boot, where only this STATS (and, on semihost://, the
    # LINK that moved the restarted board onto the pipes again) has arrived.
    assert device.board_stats()["frames"] == (2 if device.url.startswith("semihost") else 1)
    assert device.info().model_hash == TEST_MODEL_HASH


def test_result_larger_than_a_frame_arrives_in_parts(tmp_path_factory):
    positions = 256          # 1024-byte outputs; a full batch's RESULT needs 4 frames
    elf = build(boards.DEFAULT_BOARD, tmp_path_factory,
                defines=["TEST_MODEL_IN=64", f"TEST_MODEL_POS={positions}"])
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu, Device(emu.url) as dev:
        info = dev.info()
        assert info.output.size == 1024 and info.max_batch == (16384 - 2) // (1024 + 8)
        x = np.random.default_rng(11).integers(-128, 128, (info.max_batch + 2, 64, 1), np.int8)
        outputs, _ = dev.infer(x)
        np.testing.assert_array_equal(outputs, reference_model(x, positions)[0])
        dev.exit(9)
        assert emu.wait(timeout=10) == 9


@pytest.mark.parametrize("board", [b for b in boards.available() if b != boards.DEFAULT_BOARD])
def test_every_board_answers_info_and_infer(board, tmp_path_factory):
    elf = build(board, tmp_path_factory)
    x = random_inputs(np.random.default_rng(12), 2)
    with boards.Emulator(board, elf) as emu, Device(emu.url) as dev:
        assert dev.info().board == board
        outputs, work = dev.infer(x)
        np.testing.assert_array_equal(outputs, reference_model(x)[0])
        assert (work > 0).all()
        # RAW on every core (the Cortex-M3 without the DSP extension included)
        from drsn_edge.preprocess import preprocess
        from tests.test_preprocess import edge_windows, random_windows
        rng = np.random.default_rng(13)
        windows = list(random_windows(1024, 3, rng)) + [edge_windows(1024, rng)[k] for k in (
            "zeros", "square_full", "neg_spike", "tiny_1", "clipped")]
        info = dev.info()
        for w in windows:
            raw = dev.infer_raw(w)
            np.testing.assert_array_equal(raw.input,
                                          preprocess(w, info.input.scale, info.input.zero_point))
        dev.exit(0)
        assert emu.wait(timeout=10) == 0


# --- a lossy link -------------------------------------------------------------------------

class FaultyProxy:
    """TCP relay between a Device and QEMU that drops, corrupts and delays bytes, and cuts
    the connection once after `cut_after` bytes towards the board."""

    # Fault odds per byte relayed: requests are ~3 KB, answers ~80 bytes, so about one
    # request in fifteen and one answer in twelve gets damaged.
    RATE_TOWARDS_BOARD = 2e-5
    RATE_TOWARDS_HOST = 1e-3
    DELAY_ODDS = 0.03

    def __init__(self, upstream_port, seed, cut_after=None):
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.cut_after = cut_after
        self.counts = {"dropped": 0, "corrupted": 0, "delayed": 0, "cuts": 0, "bytes_up": 0}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self.listener.close()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threads = [threading.Thread(target=self._pump, args=(client, upstream, True)),
                       threading.Thread(target=self._pump, args=(upstream, client, False))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            client.close()
            upstream.close()

    def _damage(self, data, towards_board):
        data = bytearray(data)
        odds = len(data) * (self.RATE_TOWARDS_BOARD if towards_board else self.RATE_TOWARDS_HOST)
        with self._lock:
            roll = self.rng.random()
            if roll < odds:
                del data[self.rng.randrange(len(data))]
                self.counts["dropped"] += 1
            elif roll < 2 * odds:
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
                self.counts["corrupted"] += 1
            elif self.rng.random() < self.DELAY_ODDS:
                self.counts["delayed"] += 1
                time.sleep(self.rng.uniform(0.001, 0.05))
        return bytes(data)

    def _pump(self, src, dst, towards_board):
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if towards_board:
                    self.counts["bytes_up"] += len(data)
                    if self.cut_after is not None and self.counts["bytes_up"] > self.cut_after:
                        self.cut_after = None
                        self.counts["cuts"] += 1
                        break
                dst.sendall(self._damage(data, towards_board))
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_lossy_link_with_a_disconnect_loses_and_duplicates_nothing(elf):
    x = random_inputs(np.random.default_rng(13), 200)
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu:
        proxy = FaultyProxy(emu.port, seed=14, cut_after=90_000)
        try:
            with Device(proxy.url, timeout=0.5, retries=30) as dev:
                info = dev.info()
                before = dev.board_stats()["invocations"]
                outputs, work = dev.infer(x)     # 67 requests of up to 3 inputs
                after = dev.board_stats()
        finally:
            proxy.close()
    print(f"\nlossy link: proxy {proxy.counts}; host {dev.stats}; board {after}")
    assert outputs.shape == (200, *info.output.shape)
    np.testing.assert_array_equal(outputs, reference_model(x)[0])     # none lost or mixed up
    assert after["invocations"] - before == 200                       # none run twice
    assert (work > 0).all()
    assert proxy.counts["cuts"] == 1 and dev.stats.reconnects >= 1
    assert proxy.counts["dropped"] > 0 and proxy.counts["corrupted"] > 0
    assert dev.stats.retries > 0 and after["retransmissions"] > 0


def test_exit_takes_the_link_closing_before_its_answer_as_done():
    """QEMU exits with the firmware; the EXIT answer can be lost with the socket."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def board_that_exits():
        conn, _ = server.accept()
        conn.recv(64)          # the EXIT request; no answer, the board is gone
        conn.close()
        server.close()         # and nothing listens any more
    thread = threading.Thread(target=board_that_exits, daemon=True)
    thread.start()
    dev = Device(f"socket://127.0.0.1:{port}", timeout=2)
    dev.exit(0)
    # It returned on the closed link: no wait ran out, no second attempt, no reconnect.
    assert (dev.stats.timeouts, dev.stats.retries, dev.stats.reconnects) == (0, 0, 0)
    thread.join(timeout=5)
    assert dev._port is None   # closed, not reopened


# --- RAW: int16 sensor windows, preprocessed on the board ------------------------------------

def test_raw_windows_are_preprocessed_and_run_bit_exact(device):
    """The board's int8 input equals drsn_edge.preprocess on the host, and its output the
    reference model on that input, for edge-case and random windows."""
    from drsn_edge.preprocess import preprocess
    from tests.test_preprocess import edge_windows, random_windows
    rng = np.random.default_rng(21)
    windows = list(edge_windows(1024, rng).values()) + list(random_windows(1024, 12, rng))
    info = device.info()
    for x in windows:
        raw = device.infer_raw(x)
        want_in = preprocess(x, info.input.scale, info.input.zero_point)
        np.testing.assert_array_equal(raw.input, want_in)
        np.testing.assert_array_equal(raw.output, reference_model(want_in[None])[0].reshape(-1))
        assert raw.preprocess_work > 1024 and raw.work > 16_384
    # INFER on the same int8 input gives the same output: RAW only adds the preprocessing
    out, _ = device.infer(raw.input.reshape(1024, 1))
    np.testing.assert_array_equal(out.reshape(-1), raw.output)


def test_raw_repeat_is_answered_from_the_stored_response(device):
    x = np.random.default_rng(22).integers(-3000, 3000, 1024).astype(np.int16)
    before = device.board_stats()
    wire = proto.encode_frame(778, Command.RAW, proto.raw_payload(x))
    answers = [raw_exchange(device, wire) for _ in range(2)]
    after = device.board_stats()
    assert answers[0] == answers[1] and answers[0].cmd == Command.RAW_RESULT
    assert after["invocations"] - before["invocations"] == 1
    assert after["retransmissions"] - before["retransmissions"] == 1


def test_bad_raw_requests_get_an_error_and_the_board_stays_alive(device):
    x = np.arange(1024, dtype=np.int16)
    cases = [
        (ErrorCode.BAD_SHAPE, 1024, proto.raw_payload(x[:1000])),              # wrong count
        (ErrorCode.BAD_SHAPE, 1024, proto.raw_payload(np.zeros(1025, np.int16))[:2000]),
        (ErrorCode.BAD_LENGTH, 4 + 2048, proto.raw_payload(x)[:-1]),          # a byte short
        (ErrorCode.BAD_LENGTH, 4 + 2048, proto.raw_payload(x) + b"\0\0"),     # two too many
        (ErrorCode.BAD_LENGTH, 4, b"\x00\x04"),                               # no header
        (ErrorCode.BAD_LENGTH, 4, b""),
    ]
    for code, detail, payload in cases:
        with pytest.raises(DeviceError) as info:
            device.request(Command.RAW, payload)
        assert (info.value.code, info.value.detail) == (code.name, detail), payload[:8]
    with pytest.raises(UserError, match="1024 int16 samples"):
        device.infer_raw(x.astype(np.int32))
    assert device.ping(b"alive") < 1
    raw = device.infer_raw(x)
    np.testing.assert_array_equal(raw.input, preprocess_host(x, device.info()))


def preprocess_host(x, info):
    from drsn_edge.preprocess import preprocess
    return preprocess(x, info.input.scale, info.input.zero_point)


def test_raw_with_a_scale_it_cannot_use_says_so(tmp_path_factory):
    elf = build(boards.DEFAULT_BOARD, tmp_path_factory, defines=["TEST_MODEL_IN_SCALE=0.0f"])
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu, Device(emu.url, timeout=3.0) as dev:
        with pytest.raises(DeviceError, match=r"PREPROCESS .*status -2") as info:
            dev.infer_raw(np.ones(1024, np.int16))
        assert info.value.code == "PREPROCESS"
        out, _ = dev.infer(np.zeros((1024, 1), np.int8))        # INFER does not care
        np.testing.assert_array_equal(out, reference_model(np.zeros((1, 1024), np.int8))[0][0])


def test_a_window_too_long_for_a_raw_frame_is_refused_before_sending():
    from runner.link import check_raw_fits

    def info(size):
        t = proto.TensorInfo((size, 1), size, 1 / 64, -1)
        return proto.DeviceInfo(1, MAX_PAYLOAD, 3, 3, 20, "instructions", bytes(32), t,
                                proto.TensorInfo((10,), 10, 0.1, 0), "b", "0.1.0", "m", 0)
    check_raw_fits(info(2046), "socket://x:1")                  # 4 + 2 * 2046 = 4096
    with pytest.raises(UserError, match=r"4100-byte frames.*takes 4096.*hil.input = \"int8\""):
        check_raw_fits(info(2048), "socket://x:1")


# --- the semihosting link (semihost://) ----------------------------------------------------

def _open_paths(pid: int) -> set[str]:
    """The files process `pid` holds open."""
    fds = Path(f"/proc/{pid}/fd")
    out = set()
    for fd in fds.iterdir():
        try:
            out.add(str(fd.readlink()))
        except OSError:
            pass
    return out


def test_the_semihosting_link_carries_the_requests_and_hands_the_board_back(elf):
    """While semihost:// is open, QEMU holds the two pipes and the answers equal the
    model's; closed, QEMU lets go of them, the temporary directory is gone, and the board
    answers on its UART again, as often as the host switches."""
    x = random_inputs(np.random.default_rng(11), 7)
    expected, _, _ = reference_model(x)
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu:
        pid = emu._process.pid
        semi = emu.url.replace("socket://", "semihost://")
        for url in (semi, emu.url, semi, emu.url):
            with Device(url, timeout=3.0) as dev:
                out, work = dev.infer(x)
                np.testing.assert_array_equal(out, expected)
                if url == semi:
                    pipes = Path(dev._port._dir)
                    held = _open_paths(pid)
                    assert {str(pipes / "in"), str(pipes / "out")} <= held
                    assert dev.stats.bytes_sent > x.size   # what went down the pipe
            if url == semi:
                assert not pipes.exists()
                deadline = time.monotonic() + 3
                while any(str(pipes) in p for p in _open_paths(pid)) and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert not any(str(pipes) in p for p in _open_paths(pid))


def test_link_requests_the_board_cannot_meet_are_refused(elf, tmp_path):
    with boards.Emulator(boards.DEFAULT_BOARD, elf) as emu:
        with Device(emu.url, timeout=3.0) as dev:
            cases = [(str(tmp_path / "no-such-dir").encode(), "NO_LINK", 0),
                     (b"/" * 201, "BAD_LENGTH", 200), (b"", "BAD_LENGTH", 200)]
            for payload, code, detail in cases:
                with pytest.raises(DeviceError) as info:
                    dev.request(Command.LINK, payload)
                assert (info.value.code, info.value.detail) == (code, detail)
            assert dev.ping(b"still on the uart") < 1
        with Device(emu.url.replace("socket://", "semihost://"), timeout=3.0) as dev:
            with pytest.raises(DeviceError) as info:
                dev.request(Command.LINK, str(tmp_path).encode())
            assert (info.value.code, info.value.detail) == ("NO_LINK", 1)
            out, _ = dev.infer(random_inputs(np.random.default_rng(12), 1))
            np.testing.assert_array_equal(out, reference_model(random_inputs(np.random.default_rng(12), 1))[0])


def test_semihost_urls_reach_only_this_machine():
    import serial
    from drsn_edge.schema import port_problem
    with pytest.raises(serial.SerialException, match="only reaches a board emulated on this machine"):
        serial.serial_for_url("semihost://192.0.2.1:4321")
    assert "only reaches a board emulated on this machine" in port_problem("semihost://lab:4321")
    assert "malformed semihost URL" in port_problem("semihost://127.0.0.1:x")
    assert port_problem("semihost://127.0.0.1:4321") is None
