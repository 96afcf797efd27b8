"""`drsn-edge <stage>`: the single command-line entry point; the Makefile calls this."""

from __future__ import annotations

import argparse
import json
import os
import sys

from drsn_edge.errors import UserError


def quiet_tensorflow() -> None:
    # Must happen before TensorFlow is imported. oneDNN reorders float sums, which breaks
    # bit-identical retraining; the log level hides C++ start-up chatter, not errors.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None,
                   help="TOML config (default: configs/default.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=3 (repeatable)")
    p.add_argument("--build-dir", default=None,
                   help="artifact directory (default: build/, or $DRSN_EDGE_BUILD)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drsn-edge", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")

    p = sub.add_parser("train", help="generate data, train DRSN + baseline, evaluate vs SNR")
    _common(p)

    p = sub.add_parser("quantize", help="int8 QAT + PTQ, TFLite Micro conversion, op audit, host parity")
    _common(p)

    p = sub.add_parser("data", help="generate the dataset and report how hard it is")
    _common(p)

    p = sub.add_parser("firmware", help="generate C from the int8 model and build the board's "
                                        "firmware; memory report")
    _common(p)
    _board(p)
    _standalone(p)
    _model(p)
    p.add_argument("--baud", type=int, default=None,
                   help="the image's UART baud rate (firmware.baud; default: the board's, 115200)")

    p = sub.add_parser("flash", help="build, then start the firmware on the emulated board "
                                     "(or write it to a real one with --real)")
    _common(p)
    _board(p)
    _standalone(p)
    _model(p)
    p.add_argument("--baud", type=int, default=None,
                   help="the image's UART baud rate (firmware.baud; default: the board's, 115200)")
    p.add_argument("--real", action="store_true",
                   help="flash a real board with the board's tool instead of starting QEMU")
    p.add_argument("--port", default=None,
                   help="with --real: the board's serial port (e.g. /dev/ttyACM0), recorded for "
                        "`drsn-edge hil`")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact commands instead of running them")
    p.add_argument("--count", type=int, default=1,
                   help="start this many emulated boards (a farm for `drsn-edge hil`; each on "
                        "its own TCP port, pinned to the least busy CPU)")

    p = sub.add_parser("stop", help="stop the emulated board that `drsn-edge flash` started")
    _common(p)

    p = sub.add_parser("hil", help="hardware-in-loop: stream test vectors to the board over "
                                   "serial, compare with the host bit for bit")
    _common(p)
    p.add_argument("--port", action="append", default=None,
                   help="pyserial URL or device (socket://127.0.0.1:PORT, rfc2217://HOST:PORT, "
                        "/dev/ttyACM0, COM3); repeat it to share the run over several boards; "
                        "default: the board(s) `drsn-edge flash` started")
    p.add_argument("--baud", type=int, default=None, help="baud rate of a real serial port")
    _model(p)
    p.add_argument("--vectors", default=None,
                   help="an .npz with x (float windows or int8 inputs) [and y] to stream "
                        "instead of the test sweep")
    p.add_argument("--limit", type=int, default=None, help="stream at most this many vectors")
    p.add_argument("--input", default=None, metavar="int8|raw",
                   help="int8: inputs normalised and quantized on the host (default); raw: int16 "
                        "sensor windows, preprocessed on the board and checked too (hil.input)")
    p.add_argument("--debug", type=int, default=None, metavar="N",
                   help="for vector N: compare every layer on the device with the TFLM host "
                        "runtime and name the first that differs; tau per channel")

    p = sub.add_parser("monitor", help="stream a recording through the board as its sensor: a "
                                       "verdict per window, checked against the host bit for bit")
    _common(p)
    p.add_argument("--port", default=None,
                   help="pyserial URL or device; default: the board `drsn-edge flash` started")
    p.add_argument("--baud", type=int, default=None, help="baud rate of a real serial port")
    p.add_argument("--recording", default=None,
                   help="a recording (.mat, .csv, .npz in physical units) instead of the bundled "
                        "test recording (monitor.recording)")
    p.add_argument("--realtime", action="store_true", default=None,
                   help="send the samples at the pace of data.fs_hz (monitor.realtime)")

    p = sub.add_parser("doctor", help="check that every tool drsn-edge needs works here "
                                      "(cross compilers, C++ library, QEMU, Python packages)")
    p.add_argument("--quiet", action="store_true", help="print nothing when all is well")

    p = sub.add_parser("benchmark", help="instructions, MACs, flash and RAM per layer on a board "
                                         "(and side by side with TFLM when TFLM_LIB is given)")
    _common(p)
    _board(p)
    _model(p)
    return parser


def _standalone(p: argparse.ArgumentParser) -> None:
    p.add_argument("--standalone", action="store_true", default=None,
                   help="an image that needs no host: it plays a recording from flash as its "
                        "sensor and prints a verdict line per window (firmware.standalone)")


def _model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, metavar="PATH.tflite",
                   help="deploy / check this fully-int8 .tflite of your own instead of the "
                        "model `drsn-edge quantize` wrote (firmware.model_path)")


def _board(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default=None,
                   help="target board (default: firmware.board of the config, mps2-an386)")
    p.add_argument("--optimize", choices=("speed", "size"), default=None,
                   help="speed: the fast kernels' weights widened to int16 in flash; size: kept int8 "
                        "and widened in the loop, about half the weight flash (firmware.optimize)")


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    if getattr(args, "build_dir", None):
        os.environ["DRSN_EDGE_BUILD"] = args.build_dir
    try:
        if args.stage == "doctor":
            from drsn_edge import doctor
            doctor.run(quiet=args.quiet)
            return 0
        from drsn_edge import config
        overrides = list(args.overrides)
        for flag, key in (("board", "firmware.board"), ("port", "hil.port"), ("baud", "hil.baud"),
                          ("limit", "hil.limit"), ("input", "hil.input"),
                          ("standalone", "firmware.standalone"), ("model", "firmware.model_path"),
                          ("optimize", "firmware.optimize")):
            value = getattr(args, flag, None)
            if value is None or (flag == "port" and args.stage == "flash"):
                continue
            if flag == "baud" and args.stage in ("firmware", "flash"):
                key = "firmware.baud"
            if flag == "port":
                # One --port is hil.port; several are a farm (hil.ports). Either replaces
                # the ports of the config file. (`monitor` takes one --port.)
                value = [value] if isinstance(value, str) else value
                one = len(value) == 1
                overrides += [f"hil.port={json.dumps(value[0] if one else '')}",
                              f"hil.ports={json.dumps([] if one else value)}"]
                continue
            overrides.append(f"{key}={json.dumps(value)}")
        cfg = config.load(args.config, overrides)
        if args.stage == "train":
            from training import train
            train.run(cfg)
        elif args.stage == "quantize":
            from quantize import pipeline
            pipeline.run(cfg)
        elif args.stage == "data":
            from training import dataset
            dataset.run(cfg)
        elif args.stage == "firmware":
            from firmware_gen import stage
            stage.run(cfg)
        elif args.stage == "flash":
            from boards import flash
            flash.run(cfg, real=args.real, port=args.port, dry_run=args.dry_run,
                      count=args.count)
        elif args.stage == "stop":
            from boards import flash
            flash.stop(cfg)
        elif args.stage == "hil":
            from runner import hil
            return hil.run(cfg, vectors=args.vectors, debug=args.debug)
        elif args.stage == "monitor":
            from runner import monitor
            return monitor.run(cfg, recording=args.recording, realtime=args.realtime)
        elif args.stage == "benchmark":
            from firmware_gen import benchmark
            benchmark.run(cfg)
    except UserError as exc:
        print(f"drsn-edge {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"drsn-edge {args.stage}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
