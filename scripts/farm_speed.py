"""Vectors per second of a HIL run on 1, 2, ... of the boards `make flash BOARDS=N` started,
side by side in one run (rounds alternate the sizes, so a change in the machine's load hits
every size alike).

    make flash BOARDS=2 CONFIG=configs/smoke.toml
    .venv/bin/python scripts/farm_speed.py --config configs/smoke.toml [--rounds 3] [--limit 0] [--link socket]

Prints one line per run and a table: median vectors/s per farm size and the ratio to one
board. Writes nothing but build/reports/hil.* (each run overwrites them).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/smoke.toml")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="vectors per run (0: the whole sweep)")
    ap.add_argument("--link", choices=("semihost", "socket"), default="semihost",
                    help="the boards' semihosting pipes (as make hil) or their emulated UARTs")
    args = ap.parse_args()
    from boards import flash
    from drsn_edge.artifacts import paths
    from drsn_edge.cli import main as cli
    urls = [b["url"].replace("socket://", f"{args.link}://", 1) for b in flash.boards_of(flash.running())]
    if len(urls) < 2:
        print("farm_speed: start two or more boards first: make flash BOARDS=2", file=sys.stderr)
        return 2
    sizes = list(range(1, len(urls) + 1))
    speeds: dict[int, list[float]] = {k: [] for k in sizes}
    for r in range(args.rounds):
        for k in (sizes if r % 2 == 0 else sizes[::-1]):
            argv = ["hil", "--config", args.config, "--limit", str(args.limit)]
            for url in urls[:k]:
                argv += ["--port", url]
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                code = cli(argv)
            rep = json.loads((paths()["reports"] / "hil.json").read_text())
            if code != 0 or rep["n_boards_failed"]:
                print(f"farm_speed: the run on {k} board(s) failed (exit {code})", file=sys.stderr)
                return 2
            speeds[k].append(rep["vectors_per_second"])
            per_board = ", ".join(f"{b['vectors']} at {b['vectors_per_second']}/s"
                                  for b in rep["boards"])
            print(f"round {r + 1}: {k} board(s): {rep['n_vectors']} vectors, "
                  f"{rep['vectors_per_second']} vectors/s ({per_board})")
    base = statistics.median(speeds[1])
    print("\n| boards | vectors/s (median) | runs | vs 1 board |\n|---:|---:|---|---:|")
    for k in sizes:
        med = statistics.median(speeds[k])
        print(f"| {k} | {med:.1f} | {', '.join(f'{v:g}' for v in speeds[k])} | {med / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
