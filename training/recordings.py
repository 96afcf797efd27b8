"""Real vibration recordings: loading, windowing, labelling and a split by recording.

Formats: MATLAB .mat (the CWRU files, e.g. variable X097_DE_time; v7.3 files through h5py),
single-column .csv (a header row is allowed) and .npz. Labels come from a manifest CSV
("path,label", paths relative to the manifest) or from the file name.

Windows cut from one recording overlap and share its speed, load and sensor mounting, so
they are near-duplicates: the split assigns whole recordings to train, val or test, never
single windows. Anything else would report leakage as accuracy.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from drsn_edge.errors import UserError
from training.signals import CLASSES

SUFFIXES = (".mat", ".csv", ".npz")
SPLITS = ("train", "val", "test")

# CWRU-style short names: IR007, B014, OR021@6 (the @ position is ignored).
_CWRU_NAME = re.compile(r"(?<![a-z])(ir|b|or)[_-]?(007|014|021)(?!\d)")
_CWRU_LOCATION = {"ir": "inner_race", "b": "ball", "or": "outer_race"}


# ---------------------------------------------------------------------------- loading

# Variable names that state a file's sample rate (a scalar in Hz). CWRU's *RPM variables are
# shaft speeds, not rates, so they are not among them.
RATE_KEYS = ("fs", "fs_hz", "Fs", "sample_rate", "sampling_rate", "sample_rate_hz")


def load_signal(path, key: str = "", fs_hz: float | None = None) -> np.ndarray:
    """One recording as a 1-D float64 array.

    `key` picks the variable of a .mat/.npz file: an exact name, or a unique name ending in
    it (key="DE_time" fits every CWRU file). Default: the variable ending in _DE_time, else
    the only floating-point array. CSV files use their first numeric column. With `fs_hz`,
    a .mat/.npz that states its own sample rate (a scalar named in RATE_KEYS) must match it.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recording not found; fix the path in data.files.paths "
                        f"or in the manifest")
    suffix = path.suffix.lower()
    if suffix in (".mat", ".npz"):
        arrays = _read_mat(path) if suffix == ".mat" else _read_npz(path)
        _check_rate(arrays, path, fs_hz)
        data = _pick(arrays, key, path)
    elif suffix == ".csv":
        data = _read_csv(path)
    else:
        raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                        f"convert it to one of {', '.join(SUFFIXES)}")
    return _as_signal(data, path)


def _read_mat(path: Path) -> dict:
    import scipy.io
    try:
        raw = scipy.io.loadmat(path)
    except NotImplementedError:
        return _read_mat73(path)
    except Exception as exc:  # scipy raises several types for damaged files
        raise UserError(f"{path}: not a readable MATLAB file ({exc}); re-save it from "
                        f"MATLAB with save(..., '-v7') or convert it to .csv/.npz") from None
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def _read_mat73(path: Path) -> dict:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            # MATLAB writes column-major, so h5py sees the transpose; flattening undoes it.
            return {k: np.asarray(v) for k, v in f.items() if isinstance(v, h5py.Dataset)}
    except OSError as exc:
        raise UserError(f"{path}: not a readable MATLAB v7.3 file ({exc}); "
                        f"convert it to .csv/.npz") from None


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc}); save it with "
                        f"numpy.savez(path, signal=array)") from None


def _check_rate(arrays: dict, path: Path, fs_hz: float | None) -> None:
    if fs_hz is None:
        return
    for name in RATE_KEYS:
        value = np.asarray(arrays.get(name, []))
        if value.size == 1 and np.issubdtype(value.dtype, np.number):
            rate = float(value.reshape(-1)[0])
            if not np.isclose(rate, fs_hz, rtol=1e-6):
                raise UserError(f"{path}: recorded at {rate:g} Hz ({name}), but data.fs_hz = "
                                f"{fs_hz:g}; resample the recording to {fs_hz:g} Hz or set "
                                f"data.fs_hz = {rate:g} (all recordings need one rate)")


def _is_numeric(a) -> bool:
    return isinstance(a, np.ndarray) and (np.issubdtype(a.dtype, np.number)
                                          or a.dtype == bool) and a.size > 1


def _pick(arrays: dict, key: str, path: Path) -> np.ndarray:
    names = sorted(arrays)
    listing = ", ".join(f"{k} {getattr(arrays[k], 'shape', '')}" for k in names) or "none"
    if key:
        if key in arrays:
            return arrays[key]
        hits = [k for k in names if k.endswith(key)]
        if len(hits) == 1:
            return arrays[hits[0]]
        what = "several variables end in" if hits else "no variable"
        raise UserError(f"{path}: {what} {key!r} (data.files.key); variables present: "
                        f"{listing}; set data.files.key to one of them")
    hits = [k for k in names if k.endswith("_DE_time")]
    if len(hits) > 1:
        # Some CWRU files hold two runs (e.g. 99.mat: X098 and X099): take the file's own.
        number = re.sub(r"\D", "", path.stem)
        own = [k for k in hits if number and re.sub(r"\D", "", k.split("_")[0]) == number.zfill(3)]
        if len(own) == 1:
            return arrays[own[0]]
        raise UserError(f"{path}: several drive-end signals ({', '.join(hits)}); set "
                        f"data.files.key to the one to use")
    if hits:
        return arrays[hits[0]]
    numeric = [k for k in names if _is_numeric(arrays[k])]
    if len(numeric) == 1:
        return arrays[numeric[0]]
    if not numeric:
        raise UserError(f"{path}: no numeric signal in the file (variables: {listing}); "
                        f"store the vibration signal as a numeric array")
    raise UserError(f"{path}: several numeric arrays and none ending in _DE_time "
                    f"(variables: {listing}); set data.files.key to the one to use")


def _read_csv(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text CSV file; save the signal as one numeric "
                        f"column of text") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise UserError(f"{path}: the file is empty; it needs one numeric column "
                        f"(one sample per line)")
    delimiter = next((d for d in (",", ";", "\t") if d in lines[0][1]), None)

    def fields(line):
        return [f.strip() for f in (line.split(delimiter) if delimiter else line.split())]

    first = fields(lines[0][1])
    if not any(_number(f) is not None for f in first):  # a header row
        lines = lines[1:]
        if not lines:
            raise UserError(f"{path}: only a header row, no samples; add one sample per line")
    row = fields(lines[0][1])
    column = next((i for i, f in enumerate(row) if _number(f) is not None), None)
    if column is None:
        raise UserError(f"{path}: line {lines[0][0]} has no numeric value "
                        f"({lines[0][1].strip()!r}); the file needs a numeric column")
    values = np.empty(len(lines))
    for j, (lineno, line) in enumerate(lines):
        parts = fields(line)
        value = _number(parts[column]) if column < len(parts) else None
        if value is None:
            raise UserError(f"{path}: line {lineno}, column {column + 1}: "
                            f"{(parts[column] if column < len(parts) else '')!r} is not a number; "
                            f"fix or remove that line")
        values[j] = value
    return values


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def _as_signal(data, path: Path) -> np.ndarray:
    a = np.asarray(data)
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise UserError(f"{path}: the signal is not numeric (dtype {a.dtype}); "
                        f"store the vibration samples as numbers")
    # Integer arrays are refused rather than guessed at: in these files they are usually
    # labels, indices or raw ADC counts with an unknown offset and gain, not a vibration signal.
    if not np.issubdtype(a.dtype, np.floating):
        raise UserError(f"{path}: the signal is {a.dtype}, not floating point; store the "
                        f"vibration in physical units as floats (e.g. counts * volts_per_count "
                        f"with numpy .astype(np.float32)), or pick the signal with data.files.key")
    if a.ndim > 1:
        if sum(s > 1 for s in a.shape) > 1:
            raise UserError(f"{path}: the signal has shape {a.shape}, expected one channel; "
                            f"save a single column (or pick one with data.files.key)")
        a = a.reshape(-1)
    a = a.astype(np.float64).reshape(-1)
    if a.size == 0:
        raise UserError(f"{path}: the signal is empty; the file needs vibration samples")
    bad = ~np.isfinite(a)
    if bad.any():
        first = int(np.argmax(bad))
        raise UserError(f"{path}: {int(bad.sum())} NaN/inf values (first at index {first}); "
                        f"clean or cut the recording before using it")
    return a


# ---------------------------------------------------------------------------- windowing

def hop(window: int, overlap: float) -> int:
    if not 0.0 <= overlap < 1.0:
        raise UserError(f"data.files.overlap = {overlap}: must be >= 0 and < 1 (e.g. 0.5)")
    return max(1, int(round(window * (1.0 - overlap))))


def windows(signal, window: int, overlap: float, source: str = "") -> np.ndarray:
    """[n, window] windows with hop round(window * (1 - overlap)); a partial tail is dropped."""
    step = hop(window, overlap)
    signal = np.asarray(signal)
    if signal.size < window:
        where = f"{source}: " if source else ""
        raise UserError(f"{where}recording has {signal.size} samples, shorter than one "
                        f"window of {window} (data.window); use a longer recording or a "
                        f"smaller window")
    n = 1 + (signal.size - window) // step
    index = np.arange(window)[None, :] + step * np.arange(n)[:, None]
    return signal[index]


# ---------------------------------------------------------------------------- labels

def label_from_name(name: str, mapping: dict | None = None) -> str | None:
    """Class from a file name, or None.

    Tried in turn: a user mapping {pattern: label} (a pattern equal to the stem, else the
    longest non-numeric pattern contained in the name), a class name from signals.CLASSES,
    a CWRU short name (IR007, B014, OR021@6).
    """
    low = Path(name).name.lower()
    stem = Path(name).stem.lower()
    if mapping:
        patterns = {str(p).lower(): label for p, label in mapping.items()}
        if stem in patterns:
            return patterns[stem]
        # Numbers only match a whole stem: "97" must not claim "197.mat".
        hits = [p for p in patterns if not p.isdigit() and p in low]
        if hits:
            return patterns[max(hits, key=len)]
    known = [c for c in CLASSES if c in low]
    if known:
        return max(known, key=len)
    m = _CWRU_NAME.search(low)
    if m:
        return f"{_CWRU_LOCATION[m.group(1)]}_{m.group(2)}"
    return None


def read_manifest(path) -> dict[Path, str]:
    """{resolved recording path: label} from a 'path,label' CSV (header row optional)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found; fix data.files.manifest")
    labels: dict[Path, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not any(row) or row[0].startswith("#"):
                continue
            if lineno == 1 and [c.lower() for c in row[:2]] == ["path", "label"]:
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise UserError(f"{path}: line {lineno} should be 'path,label', got "
                                f"{','.join(row)!r}")
            labels[(path.parent / row[0]).resolve()] = row[1]
    if not labels:
        raise UserError(f"{path}: the manifest lists no recordings; add 'path,label' rows")
    return labels


def _is_manifest(path: Path, manifest: Path | None) -> bool:
    """A 'path,label' CSV is a manifest, not a recording, even when it sits among them."""
    if path.suffix.lower() != ".csv":
        return False
    if manifest is not None and path.resolve() == manifest.resolve():
        return True
    try:
        with path.open(encoding="utf-8-sig") as f:
            first = next((ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")), "")
    except (OSError, UnicodeDecodeError):
        return False
    return [c.strip().lower() for c in first.split(",")[:2]] == ["path", "label"]


def _scan(paths, manifest: Path | None = None) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in SUFFIXES
                           and not _is_manifest(q, manifest))
            if not found:
                raise UserError(f"{p}: folder has no {'/'.join(SUFFIXES)} recordings; "
                                f"check data.files.paths")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder; fix data.files.paths")
    unique, seen = [], set()
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique


def _class_order(labels) -> list[str]:
    labels = set(labels)
    return [c for c in CLASSES if c in labels] + sorted(labels - set(CLASSES))


# ---------------------------------------------------------------------------- data set

def split_counts(n: int, fractions) -> list[int]:
    """Recordings per split for a class of n: largest remainders, at least one each."""
    raw = np.asarray(fractions, dtype=np.float64) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts)):
        while counts[i] == 0:
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[i] += 1
    return counts.tolist()


def _check_split(split) -> np.ndarray:
    s = np.asarray(split, dtype=np.float64) if isinstance(split, (list, tuple)) else None
    if s is None or s.shape != (3,) or np.any(s <= 0):
        raise UserError(f"data.files.split = {split!r}: give three positive shares "
                        f"[train, val, test], e.g. [0.7, 0.15, 0.15]")
    return s / s.sum()


def load_dataset(files_cfg: dict, window: int, seed: int, fs_hz: float | None = None) -> dict:
    """Windows of every recording, split by recording and stratified by class.

    Returns {"classes", "recordings" (path per recording id), "train", "val", "test"},
    each split a tuple (x float32 [n, window], y int64 [n], recording id int64 [n]).
    """
    fractions = _check_split(files_cfg.get("split", [0.7, 0.15, 0.15]))
    overlap = float(files_cfg.get("overlap", 0.5))
    hop(window, overlap)
    key = files_cfg.get("key", "") or ""
    mapping = files_cfg.get("labels") or None
    manifest_path = files_cfg.get("manifest", "") or ""
    manifest = read_manifest(manifest_path) if manifest_path else {}

    paths = list(files_cfg.get("paths") or [])
    if paths:
        files = _scan(paths, Path(manifest_path) if manifest_path else None)
    elif manifest:
        files = list(manifest)
    else:
        raise UserError("data.files.paths is empty and there is no data.files.manifest; "
                        "list recordings or folders in data.files.paths")

    labels = []
    for f in files:
        label = manifest.get(f.resolve()) or label_from_name(f.name, mapping)
        if label is None:
            raise UserError(f"{f}: cannot tell its class from the file name; add a row "
                            f"'{f.name},<class>' to a manifest CSV (data.files.manifest)")
        labels.append(label)
    classes = _class_order(list(labels) + list(manifest.values()))
    index = {c: i for i, c in enumerate(classes)}

    per_rec = []
    for f in files:
        signal = load_signal(f, key, fs_hz)
        per_rec.append(windows(signal, window, overlap, source=str(f)))

    rng = np.random.default_rng(seed)
    assign = np.empty(len(files), dtype=np.int64)
    for c in classes:
        recs = [i for i, lab in enumerate(labels) if lab == c]
        if not recs:
            raise UserError(f"class {c!r} is declared in {manifest_path} but none of its "
                            f"recordings is in data.files.paths; add its files or drop its rows")
        if len(recs) < len(SPLITS):
            raise UserError(f"class {c!r} has only {len(recs)} recording(s) "
                            f"({', '.join(files[i].name for i in recs)}); the split by "
                            f"recording needs at least {len(SPLITS)} per class; add recordings "
                            f"or cut long ones into several files")
        order = rng.permutation(recs)
        bounds = np.cumsum([0] + split_counts(len(recs), fractions))
        for s in range(len(SPLITS)):
            assign[order[bounds[s]:bounds[s + 1]]] = s

    out = {"classes": classes, "recordings": [str(f) for f in files]}
    for s, name in enumerate(SPLITS):
        recs = np.flatnonzero(assign == s)
        if recs.size == 0:
            raise UserError(f"the {name} split is empty; add recordings or change "
                            f"data.files.split")
        x = np.concatenate([per_rec[i] for i in recs]).astype(np.float32)
        y = np.concatenate([np.full(len(per_rec[i]), index[labels[i]]) for i in recs])
        rec = np.concatenate([np.full(len(per_rec[i]), i) for i in recs])
        out[name] = (x, y.astype(np.int64), rec.astype(np.int64))
    return out
