"""Host side of hardware-in-the-loop runs: talking to a board over any pyserial URL.

    from runner.link import Device          # info(), infer(), debug(), ping()
    from runner import protocol             # framing, COBS, CRC, payload layouts

The wire format is specified in firmware_gen/harness/protocol.h.
"""
