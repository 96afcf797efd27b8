"""Pipeline configuration: one TOML file plus `--set key=value` overrides.

Every stage reads the same dict. Values given with --set are parsed as TOML values
(`--set train.epochs=3`, `--set model.arch="resnet"`, `--set eval.snr_db=[-5,0]`),
falling back to a plain string so `--set model.arch=resnet` also works.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from drsn_edge.errors import UserError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.toml"


def load(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise UserError(f"config file {path} not found; pass an existing TOML file "
                        f"(e.g. configs/default.toml or configs/smoke.toml)")
    try:
        cfg = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    for item in overrides:
        apply_override(cfg, item)
    cfg["_source"] = str(path)
    return cfg


def parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(cfg: dict, item: str) -> None:
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value, e.g. --set train.epochs=3")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise UserError(f"--set {item!r}: no config section {part!r} "
                            f"(known: {', '.join(k for k, v in node.items() if isinstance(v, dict))})")
        node = node[part]
    leaf = parts[-1]
    if leaf not in node:
        raise UserError(f"--set {item!r}: unknown key {key!r} "
                        f"(known here: {', '.join(sorted(node))})")
    value = parse_value(text.strip())
    old = node[leaf]
    # Keep types honest: an int where a float is expected is fine, a string for a number is not.
    if isinstance(old, bool) != isinstance(value, bool) or (
            isinstance(old, (int, float)) and not isinstance(value, (int, float))):
        raise UserError(f"--set {item!r}: {key} expects a {type(old).__name__}, got {text!r}")
    if isinstance(old, float) and isinstance(value, int):
        value = float(value)
    node[leaf] = value


def section(cfg: dict, name: str) -> dict:
    if name not in cfg:
        raise UserError(f"config {cfg.get('_source', '?')} has no [{name}] section")
    return copy.deepcopy(cfg[name])
