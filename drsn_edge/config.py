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
    set_keys = {apply_override(cfg, item) for item in overrides}
    validate(cfg, str(path), set_keys)
    cfg["_source"] = str(path)
    return cfg


def _leaves(node: dict, prefix: str = ""):
    """(dotted key, value) of a parsed TOML table; a key the schema knows is a leaf even
    when its value is a table (data.files.labels)."""
    from drsn_edge.schema import SCHEMA
    for name, value in node.items():
        key = prefix + name
        if isinstance(value, dict) and key not in SCHEMA:
            yield from _leaves(value, key + ".")
        else:
            yield key, value


def validate(cfg: dict, source: str, set_keys=frozenset()) -> None:
    """Check every key against drsn_edge/schema.py; raise one UserError for the first problem
    (an unknown key, a missing key, a value outside what is allowed, a rule between keys)."""
    from drsn_edge.schema import CROSS_CHECKS, OPTIONAL, SCHEMA
    sections = {k.rsplit(".", 1)[0] for k in SCHEMA if "." in k}
    for key, _ in _leaves(cfg):
        if key == "_source" or key in SCHEMA:
            continue
        where = key.rsplit(".", 1)[0] if "." in key else ""
        known = sorted(k.rsplit(".", 1)[-1] for k in SCHEMA
                       if (k.rsplit(".", 1)[0] if "." in k else "") == where)
        known += sorted(s.rsplit(".", 1)[-1] for s in sections
                        if (s.rsplit(".", 1)[0] if "." in s else "") == where)
        raise UserError(f"config {source}: unknown key {key!r} (known in "
                        f"{'[' + where + ']' if where else 'the top level'}: {', '.join(known)}); "
                        f"fix or remove it")

    def get(key):
        node = cfg
        for part in key.split("."):
            node = node[part]
        return node

    for key, rule in SCHEMA.items():
        try:
            value = get(key)
        except (KeyError, TypeError):
            if key in OPTIONAL:
                continue
            raise UserError(f"config {source} lacks {key}; copy it from configs/default.toml") from None
        if not rule(value):
            where = "command line" if key in set_keys else source
            problem = rule.explain(value) if rule.explain else None
            raise UserError(f"{key} = {_show(value)} ({where}): {problem or 'must be ' + rule.allowed}")
    for key, problem in CROSS_CHECKS(get):
        where = "command line" if key in set_keys else source
        raise UserError(f"{key} = {_show(get(key))} ({where}): {problem}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(cfg: dict, item: str) -> str:
    """Set one key=value in cfg; returns the dotted key."""
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
    return key.strip()


def section(cfg: dict, name: str) -> dict:
    if name not in cfg:
        raise UserError(f"config {cfg.get('_source', '?')} has no [{name}] section")
    return copy.deepcopy(cfg[name])
