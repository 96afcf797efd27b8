"""Baud rates: the UART divisor registers for a rate, computed here once.

The C drivers (boards/common/uart_*.c) take the register values as macros from the
generated board_config.h, so the arithmetic and the check that the rate is reachable live in
one place. A rate is reachable when the nearest divisor gives a baud rate within
TOLERANCE of the one asked for: both ends of a serial line sample each bit in its middle, so
their clocks may differ by a few percent in total before bits slip over a 10-bit frame;
2.5 % on our side leaves room for the USB-serial bridge and the chip's own oscillator
(the STM32's HSI is within 1 % at room temperature).

Per driver (what the register means; the actual rate that results):
- stm32 (USART, RM0090): BRR = clock / baud in 1/16 steps (16x oversampling, mantissa and
  4-bit fraction), at least 16; when the rate is too high for that, 8x oversampling (OVER8)
  with BRR = mantissa << 4 | 3-bit fraction, clock / baud in 1/8 steps, at least 8. Up to
  clock / 8 baud.
- pl011 (Arm PrimeCell UART): clock / (16 baud) in 1/64 steps, integer part in IBRD
  (at least 1) and fraction in FBRD. Up to clock / 16 baud.
- cmsdk (Arm CMSDK APB UART): BAUDDIV = clock / baud, at least 16, 20 bits. Up to
  clock / 16 baud.
"""

from __future__ import annotations

from dataclasses import dataclass

TOLERANCE = 0.025
# Rates USB-serial bridges (FTDI, CP210x, CH34x, ST-LINK's virtual COM port) commonly take.
COMMON_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 921600,
                1000000, 1500000, 2000000, 3000000)


@dataclass(frozen=True)
class Divisor:
    driver: str
    clock_hz: int
    baud: int
    macros: dict            # name -> value, written into board_config.h
    actual_baud: float

    @property
    def error(self) -> float:
        """Relative error of the rate the divisor gives (signed: + is faster)."""
        return (self.actual_baud - self.baud) / self.baud

    def describe(self) -> dict:
        return {"baud": self.baud, "actual_baud": round(self.actual_baud, 1),
                "error_percent": round(100 * self.error, 3), "uart_clock_hz": self.clock_hz,
                "registers": dict(self.macros)}


def _stm32(clock: int, baud: int) -> tuple[dict, float] | None:
    d = (clock + baud // 2) // baud
    if 16 <= d <= 0xFFFF:
        return {"BOARD_UART_BRR": d, "BOARD_UART_OVER8": 0}, clock / d
    if 8 <= d < 16:
        return {"BOARD_UART_BRR": (d >> 3) << 4 | (d & 7), "BOARD_UART_OVER8": 1}, clock / d
    return None


def _pl011(clock: int, baud: int) -> tuple[dict, float] | None:
    d64 = (4 * clock + baud // 2) // baud
    if 64 <= d64 < (1 << 22):
        return {"BOARD_UART_IBRD": d64 >> 6, "BOARD_UART_FBRD": d64 & 63}, 4 * clock / d64
    return None


def _cmsdk(clock: int, baud: int) -> tuple[dict, float] | None:
    d = (clock + baud // 2) // baud
    if 16 <= d < (1 << 20):
        return {"BOARD_UART_BAUDDIV": d}, clock / d
    return None


_DRIVERS = {"stm32": _stm32, "pl011": _pl011, "cmsdk": _cmsdk}


def _nearest(driver: str, clock_hz: int, baud: int):
    if driver not in _DRIVERS:
        raise ValueError(f"no baud-rate divisor known for UART driver {driver!r}")
    if baud <= 0:
        return None
    return _DRIVERS[driver](clock_hz, baud)


def reachable(driver: str, clock_hz: int) -> list[int]:
    """The common rates this UART at this clock gives within TOLERANCE."""
    out = []
    for rate in COMMON_RATES:
        got = _nearest(driver, clock_hz, rate)
        if got and abs(got[1] - rate) <= TOLERANCE * rate:
            out.append(rate)
    return out


def divisor(driver: str, clock_hz: int, baud: int, where: str = "the board") -> Divisor:
    """The register values for `baud`; ValueError naming the reachable rates otherwise."""
    got = _nearest(driver, clock_hz, baud)
    if got is not None and abs(got[1] - baud) <= TOLERANCE * baud:
        return Divisor(driver, clock_hz, baud, got[0], got[1])
    rates = ", ".join(f"{r:,}" for r in reachable(driver, clock_hz)) or "none of the usual ones"
    if got is None:
        why = f"out of the divider's range at a {clock_hz / 1e6:g} MHz UART clock"
    else:
        why = (f"{100 * abs(got[1] - baud) / baud:.1f} % off at a {clock_hz / 1e6:g} MHz UART "
               f"clock (the nearest divisor gives {got[1]:,.0f} baud; at most "
               f"{100 * TOLERANCE:g} % is safe)")
    raise ValueError(f"{baud:,} baud cannot be set on {where}: {why}; rates it can take: {rates}")
