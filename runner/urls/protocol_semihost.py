"""semihost://HOST:PORT - an emulated board's semihosting link, as a pyserial port.

QEMU's UART models hand over one byte per round trip between QEMU's I/O thread and its
vCPU thread, about 30 us of host CPU per byte: 90 % of a HIL run on the default model.
This port connects to the board's UART at HOST:PORT (as socket:// does), makes two named
pipes, and asks the board (LINK, protocol.h) to move its link onto them: the firmware then
reads and writes them with semihosting SYS_READ / SYS_WRITE, a whole request per call.
Closing the port closes the pipes, and the board goes back to its UART.

    port = serial.serial_for_url("semihost://127.0.0.1:4321", timeout=5)

Only for a board QEMU emulates on this machine (QEMU opens the pipes by path); what the
UART said before the move (the boot self-test line) is read first, as on socket://.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import struct
import tempfile
import termios
import urllib.parse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, SerialTimeoutException, Timeout

OPEN_TIMEOUT_S = 5.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Serial(SerialBase):
    """The pipes of one board; the UART socket stays open to notice QEMU ending."""

    def open(self):
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        host, port = self.from_url(self.portstr)
        self._uart = self._dir = None
        self._in = self._out = -1
        self._pending = bytearray()
        try:
            self._uart = socket.create_connection((host, port), timeout=OPEN_TIMEOUT_S)
        except OSError as exc:
            raise SerialException(f"Could not open port {self.portstr}: {exc}") from None
        self._uart.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._uart.setblocking(False)
        try:
            self._move_link()
        except BaseException:
            self._teardown()
            raise
        self.is_open = True

    def _move_link(self) -> None:
        from runner.link import error_message
        from runner.protocol import Command, FrameReader, Frame, encode_frame, parse_error
        self._dir = tempfile.mkdtemp(prefix="drsn-edge-link-")
        for name in ("in", "out"):
            os.mkfifo(os.path.join(self._dir, name), 0o600)
        # Held read-write: opening a pipe for one direction waits for the other end, and
        # the board's SYS_OPEN must not wait (QEMU's whole machine stops while it does).
        self._in = os.open(os.path.join(self._dir, "in"), os.O_RDWR | os.O_NONBLOCK)
        self._out = os.open(os.path.join(self._dir, "out"), os.O_RDWR | os.O_NONBLOCK)
        seq = int.from_bytes(os.urandom(2), "little") % 0xFFFF
        self._uart.sendall(encode_frame(seq, Command.LINK, self._dir.encode()))
        ack = encode_frame(seq, Command.LINK_ACK)
        uart_frames, got = FrameReader(1 << 16), bytearray()
        deadline = Timeout(OPEN_TIMEOUT_S)
        while len(got) < len(ack):
            ready, _, _ = select.select([self._uart, self._out], [], [], deadline.time_left())
            if not ready:
                raise SerialException(f"{self.portstr}: the board did not move its link onto the "
                                      f"semihosting pipes within {OPEN_TIMEOUT_S:.0f} s; is it an "
                                      f"emulated board (QEMU with -semihosting) on this machine?")
            if self._out in ready:
                got += os.read(self._out, 1 << 16)
            if self._uart in ready:
                data = self._uart.recv(1 << 16)
                if not data:
                    raise SerialException(f"{self.portstr}: the board's UART closed (QEMU ended)")
                self._pending += data   # the boot line and anything else it said first
                for item in uart_frames.feed(data):
                    if isinstance(item, Frame) and item.cmd == Command.ERROR and item.seq == seq:
                        code, _, detail = parse_error(item.payload)
                        raise SerialException(f"{error_message(self.portstr, Command.LINK, code, detail)}"
                                              f"; use socket:// instead")
        if bytes(got[:len(ack)]) != ack:
            raise SerialException(f"{self.portstr}: unexpected first bytes on the semihosting link")
        self._pending += got[len(ack):]

    def _teardown(self) -> None:
        # The paths go first: a board that has not opened them yet then fails to (and stays
        # on its UART) instead of waiting for a reader that will never come.
        if self._dir:
            for name in ("in", "out"):
                try:
                    os.unlink(os.path.join(self._dir, name))
                except OSError:
                    pass
        for fd in (self._in, self._out):
            if fd >= 0:
                os.close(fd)
        self._in = self._out = -1
        if self._dir:
            try:
                os.rmdir(self._dir)
            except OSError:
                pass
            self._dir = None
        if self._uart is not None:
            self._uart.close()
            self._uart = None

    def close(self):
        if self.is_open:
            self._teardown()
            self.is_open = False

    def from_url(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "semihost":
            raise SerialException(f"expected a string in the form \"semihost://HOST:PORT\": not "
                                  f"starting with semihost:// ({parts.scheme!r})")
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise SerialException(f"{url}: {exc}") from None
        if not host or not port:
            raise SerialException(f"expected a string in the form \"semihost://HOST:PORT\": {url}")
        if host not in LOCAL_HOSTS:
            raise SerialException(f"{url}: the semihosting link only reaches a board emulated on "
                                  f"this machine (127.0.0.1); use socket:// or rfc2217:// for {host}")
        return host, port

    def _reconfigure_port(self):
        pass   # a pipe has no baud rate

    @property
    def in_waiting(self):
        if not self.is_open:
            raise PortNotOpenError()
        waiting = struct.unpack("i", fcntl.ioctl(self._out, termios.FIONREAD, b"\0\0\0\0"))[0]
        return len(self._pending) + waiting

    def read(self, size=1):
        if not self.is_open:
            raise PortNotOpenError()
        data = bytearray()
        timeout = Timeout(self._timeout)
        while len(data) < size:
            if self._pending:
                take = min(size - len(data), len(self._pending))
                data += self._pending[:take]
                del self._pending[:take]
                continue
            ready, _, _ = select.select([self._out, self._uart], [], [], timeout.time_left())
            if self._out in ready:
                try:
                    data += os.read(self._out, size - len(data))
                except BlockingIOError:
                    pass
            elif self._uart in ready:
                chunk = self._uart.recv(1 << 16)
                if not chunk:
                    raise SerialException(f"{self.portstr}: the board's UART closed (QEMU ended)")
                data += chunk
            if timeout.expired():
                break
        return bytes(data)

    def write(self, data):
        if not self.is_open:
            raise PortNotOpenError()
        view = memoryview(bytes(data))
        timeout = Timeout(self._write_timeout)
        while view:
            try:
                view = view[os.write(self._in, view):]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    raise SerialException(f"{self.portstr}: {exc}") from None
            if timeout.expired():
                raise SerialTimeoutException("Write timeout")
            readable, _, _ = select.select([self._uart], [self._in], [], timeout.time_left())
            if self._uart in readable:
                chunk = self._uart.recv(1 << 16)
                if not chunk:
                    raise SerialException(f"{self.portstr}: the board's UART closed (QEMU ended)")
                self._pending += chunk
        return len(data)

    def reset_input_buffer(self):
        if not self.is_open:
            raise PortNotOpenError()
        self._pending.clear()
        while True:
            try:
                if not os.read(self._out, 1 << 16):
                    break
            except BlockingIOError:
                break

    def reset_output_buffer(self):
        pass   # what is in the pipe is the board's already

    def send_break(self, duration=0.25):
        pass

    def _update_break_state(self):
        pass

    def _update_rts_state(self):
        pass

    def _update_dtr_state(self):
        pass

    @property
    def cts(self):
        return True

    @property
    def dsr(self):
        return True

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        return True

    def fileno(self):
        return self._out
