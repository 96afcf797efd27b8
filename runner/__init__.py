"""Host side of hardware-in-the-loop runs: talking to a board over any pyserial URL.

    from runner.link import Device          # info(), infer(), debug(), ping()
    from runner import protocol             # framing, COBS, CRC, payload layouts

The wire format is specified in firmware_gen/harness/protocol.h.
"""

import serial as _serial

# semihost://HOST:PORT, an emulated board's fast link (runner/urls/protocol_semihost.py).
if "runner.urls" not in _serial.protocol_handler_packages:
    _serial.protocol_handler_packages.append("runner.urls")
