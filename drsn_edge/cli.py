"""`drsn-edge <stage>`: the single command-line entry point; the Makefile calls this."""

from __future__ import annotations

import argparse
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
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    if args.build_dir:
        os.environ["DRSN_EDGE_BUILD"] = args.build_dir
    try:
        from drsn_edge import config
        cfg = config.load(args.config, args.overrides)
        if args.stage == "train":
            from training import train
            train.run(cfg)
        elif args.stage == "quantize":
            from quantize import pipeline
            pipeline.run(cfg)
        elif args.stage == "data":
            from training import dataset
            dataset.run(cfg)
    except UserError as exc:
        print(f"drsn-edge {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"drsn-edge {args.stage}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
