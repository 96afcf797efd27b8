"""Real vibration recordings: loading, windowing, labelling and a split by recording.

Formats: MATLAB .mat (the CWRU files, e.g. variable X097_DE_time; v7.3 files through h5py),
single-column .csv (a header row is allowed) and .npz. Labels come from a manifest CSV
("path,label", paths relative to the manifest) or from the file name.

A manifest with a header row may carry more columns: the operating condition of each
recording (`path,label,load,speed_rpm,fs_hz,machine`...). The split can then follow them:
`data.files.test = {load = [3]}` puts every recording at load 3 in the test set and nowhere
else (the unseen condition); `data.files.val` likewise picks the recordings that select the
model. An `fs_hz` column (or an `fs`/`fs_hz` scalar in an .npz) states a file's sample rate;
a rate other than data.fs_hz is resampled (`data.files.resample = true`) or refused.

Windows cut from one recording overlap and share its speed, load and sensor mounting, so
they are near-duplicates: the split assigns whole recordings to train, val or test, never
single windows. Anything else would report leakage as accuracy. Where nothing is left for
validation, the last part of each training recording (after a gap of a window) is kept out
of training to watch the curves, and no epoch is selected on it (`selects` False).
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


def load_signal(path, key: str = "", fs_hz: float | None = None, rate: float | None = None,
                resample: bool = False) -> np.ndarray:
    """One recording as a 1-D float64 array, at `fs_hz` when given.

    `key` picks the variable of a .mat/.npz file: an exact name, or a unique name ending in
    it (key="DE_time" fits every CWRU file). Default: the variable ending in _DE_time, else
    the only floating-point array. CSV files use their first numeric column. The recording's
    rate is `rate` (e.g. a manifest's fs_hz column), else a scalar named in RATE_KEYS stored
    in a .mat/.npz; when it differs from `fs_hz` the signal is resampled (`resample`) or
    refused.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recording not found; fix the path in data.files.paths "
                        f"or in the manifest")
    suffix = path.suffix.lower()
    if suffix in (".mat", ".npz"):
        arrays = _read_mat(path) if suffix == ".mat" else _read_npz(path)
        rate = rate if rate is not None else _file_rate(arrays)
        data = _pick(arrays, key, path)
    elif suffix == ".csv":
        data = _read_csv(path)
    else:
        raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                        f"convert it to one of {', '.join(SUFFIXES)}")
    return at_rate(_as_signal(data, path), rate, fs_hz, resample, path)


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


def _file_rate(arrays: dict) -> float | None:
    for name in RATE_KEYS:
        value = np.asarray(arrays.get(name, []))
        if value.size == 1 and np.issubdtype(value.dtype, np.number):
            return float(value.reshape(-1)[0])
    return None


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
    """{resolved recording path: label} from a manifest CSV (see read_conditions)."""
    return {p: row["label"] for p, row in read_conditions(path).items()}


def read_conditions(path) -> dict[Path, dict[str, str]]:
    """{resolved recording path: {"label": ..., other columns...}} from a manifest CSV.

    Either 'path,label' rows (header optional) or a header row naming the columns, with
    `path` and `label` among them and any condition columns beside (load, speed_rpm, fs_hz...).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found; fix data.files.manifest")
    rows: dict[Path, dict[str, str]] = {}
    columns = ["path", "label"]
    seen_data = False  # the header, when there is one, is the first non-comment row
    with path.open(newline="", encoding="utf-8-sig") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not any(row) or row[0].startswith("#"):
                continue
            first, seen_data = not seen_data, True
            if first and _is_header(row):
                columns = [c.lower() for c in row]
                missing = [c for c in ("path", "label") if c not in columns]
                if missing:
                    raise UserError(f"{path}: the header row has no {' or '.join(missing)} column "
                                    f"(columns: {', '.join(row)}); name them 'path' and 'label'")
                continue
            if len(row) < len(columns) or not row[columns.index("path")] or not row[columns.index("label")]:
                raise UserError(f"{path}: line {lineno} should be '{','.join(columns)}', got "
                                f"{','.join(row)!r}")
            fields = dict(zip(columns, row))
            rows[(path.parent / fields.pop("path")).resolve()] = fields
    if not rows:
        raise UserError(f"{path}: the manifest lists no recordings; add 'path,label' rows")
    return rows


def _is_header(row: list[str]) -> bool:
    return [c.lower() for c in row[:2]] == ["path", "label"] or (
        "path" in [c.lower() for c in row] and "label" in [c.lower() for c in row])


def is_manifest(path: Path) -> bool:
    """A CSV whose first row is a manifest header: a list of recordings, not a recording."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f):
                if any(c.strip() for c in row) and not row[0].strip().startswith("#"):
                    return _is_header([c.strip() for c in row])
    except (OSError, UnicodeDecodeError):
        return False
    return False


def _is_manifest_of(path: Path, manifest: Path | None) -> bool:
    return is_manifest(path) or (manifest is not None and path.resolve() == Path(manifest).resolve())


def _scan(paths, manifest: Path | None = None) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in SUFFIXES
                           and not _is_manifest_of(q, manifest))
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
    if s is None or s.shape != (3,) or np.any(s < 0) or not np.all(np.isfinite(s)) or s[0] <= 0:
        raise UserError(f"data.files.split = {split!r}: give three shares [train, val, test], "
                        f"none negative and train above 0, e.g. [0.7, 0.15, 0.15], or [1, 0, 0] "
                        f"when data.files.test and data.files.val pick the other recordings")
    return s / s.sum()


def _selector(value, key: str, conds: list[dict], manifest: str) -> dict[str, set[str]]:
    """{column: allowed values} from e.g. {load = [3]}; checked against the manifest."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{key} = {value!r}: give a table of manifest columns and values, "
                        f"e.g. {key} = {{load = [3]}}")
    if not manifest:
        raise UserError(f"{key} picks recordings by manifest column, but data.files.manifest is "
                        f"empty; give a manifest CSV with a header row (path,label,load,...)")
    columns = sorted({c for cond in conds for c in cond} - {"label"} | {"label"})
    out = {}
    for column, wanted in value.items():
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if column not in columns:
            raise UserError(f"{key}: {manifest} has no column {column!r} (columns: "
                            f"{', '.join(columns)})")
        present = {cond.get(column, "") for cond in conds}
        values = {_cell(v) for v in wanted}
        unknown = sorted(values - present)
        if unknown:
            raise UserError(f"{key}: no recording has {column} = {', '.join(unknown)} in {manifest} "
                            f"(values present: {', '.join(sorted(present))})")
        out[column] = values
    return out


def _cell(v) -> str:
    """A manifest cell as text, so that load = 3 in TOML matches '3' (and '3.0') in the CSV."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _matches(cond: dict, selector: dict) -> bool:
    return bool(selector) and all(_cell_norm(cond.get(c, "")) in {_cell_norm(v) for v in vals}
                                  for c, vals in selector.items())


def _cell_norm(text: str) -> str:
    try:
        return _cell(float(text))
    except ValueError:
        return text.strip()


def _group(cond: dict, columns) -> str:
    return ",".join(f"{c}={cond.get(c, '')}" for c in columns) or "recordings"


def manifest_rate(path: Path, cond: dict) -> float | None:
    """The sample rate a manifest's fs_hz column states for a recording, if any."""
    if not cond.get("fs_hz"):
        return None
    try:
        return float(cond["fs_hz"])
    except ValueError:
        raise UserError(f"{path}: manifest fs_hz = {cond['fs_hz']!r} is not a number; give the "
                        f"sample rate in Hz") from None


def at_rate(signal: np.ndarray, rate: float | None, fs_hz: float | None, resample: bool,
            path: Path) -> np.ndarray:
    """The signal at data.fs_hz: resampled (polyphase, anti-aliased) or refused."""
    if rate is None or fs_hz is None or abs(rate - fs_hz) < 1e-6 * fs_hz:
        return signal
    if not rate > 0:
        raise UserError(f"{path}: stated sample rate {rate:g} Hz must be positive")
    if not resample:
        raise UserError(f"{path}: recorded at {rate:g} Hz but data.fs_hz = {fs_hz:g}; set "
                        f"data.files.resample = true to resample it, or give recordings at "
                        f"{fs_hz:g} Hz")
    from fractions import Fraction
    from scipy.signal import resample_poly
    ratio = Fraction(fs_hz / rate).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator)


def _time_segments(n: int, shares, window: int) -> list[tuple[int, int]]:
    """[start, end) of each share's segment of a recording of n samples, with a gap of one
    window between segments so no window straddles two of them."""
    used = [i for i, v in enumerate(shares) if v > 0]
    room = n - window * (len(used) - 1)
    bounds, at = [(0, 0)] * len(shares), 0
    for j, i in enumerate(used):
        size = int(round(room * shares[i] / sum(shares[k] for k in used)))
        end = n if j == len(used) - 1 else at + size
        bounds[i] = (at, end)
        at = end + window
    return bounds


def load_dataset(files_cfg: dict, window: int, seed: int, fs_hz: float | None = None,
                 train_window: int | None = None) -> dict:
    """Windows of every recording, split by recording (by manifest column where asked,
    else stratified by class with the `split` shares).

    Returns {"classes", "recordings" (path per recording id), "train", "val", "test",
    "test_group", "test_unseen", "selects", "split"}, each split a tuple (x float32 [n, w],
    y int64 [n], recording id int64 [n]); training windows are `train_window` long.
    """
    fractions = _check_split(files_cfg.get("split", [0.7, 0.15, 0.15]))
    overlap = float(files_cfg.get("overlap", 0.5))
    hop(window, overlap)
    train_window = int(train_window or window)
    key = files_cfg.get("key", "") or ""
    mapping = files_cfg.get("labels") or None
    manifest_path = files_cfg.get("manifest", "") or ""
    manifest = read_conditions(manifest_path) if manifest_path else {}
    by_time = bool(files_cfg.get("by_time", False))

    paths = list(files_cfg.get("paths") or [])
    if paths:
        files = _scan(paths, Path(manifest_path) if manifest_path else None)
    elif manifest:
        files = list(manifest)
    else:
        raise UserError("data.files.paths is empty and there is no data.files.manifest; "
                        "list recordings or folders in data.files.paths")

    labels, conds = [], []
    for f in files:
        cond = manifest.get(f.resolve(), {})
        label = cond.get("label") or label_from_name(f.name, mapping)
        if label is None:
            raise UserError(f"{f}: cannot tell its class from the file name; add a row "
                            f"'{f.name},<class>' to a manifest CSV (data.files.manifest)")
        labels.append(label)
        conds.append(cond)
    classes = _class_order(list(labels) + [c["label"] for c in manifest.values()])
    index = {c: i for i, c in enumerate(classes)}
    # Every file is read (and brought to data.fs_hz) before any split: a bad file is named
    # as such, not as a split that came out short.
    resample = bool(files_cfg.get("resample", True))
    signals = []
    for f, cond in zip(files, conds):
        sig = load_signal(f, key, fs_hz, manifest_rate(f, cond), resample)
        windows(sig[:window], window, overlap, source=str(f))  # at least one window long
        signals.append(sig)
    test_sel = _selector(files_cfg.get("test"), "data.files.test", conds, manifest_path)
    val_sel = _selector(files_cfg.get("val"), "data.files.val", conds, manifest_path)

    # --- which recordings go where -------------------------------------------------------
    assign = np.full(len(files), -1, dtype=np.int64)
    for i, cond in enumerate(conds):
        if _matches(cond, test_sel):
            assign[i] = 2
        if _matches(cond, val_sel):
            if assign[i] == 2:
                raise UserError(f"{files[i]} is picked by both data.files.test and data.files.val; "
                                f"a recording can only be in one of them")
            assign[i] = 1
    rng = np.random.default_rng(seed)
    shares = fractions.copy()
    time_split = []  # recordings cut by time into the shares (by_time)
    for c in classes:
        recs = [i for i, lab in enumerate(labels) if lab == c and assign[i] < 0]
        if not any(lab == c for lab in labels):
            raise UserError(f"class {c!r} is declared in {manifest_path} but none of its "
                            f"recordings is in data.files.paths; add its files or drop its rows")
        if not recs:
            continue
        if by_time:
            time_split += recs
            continue
        needed = int(np.count_nonzero(shares))
        if len(recs) < needed:
            raise UserError(f"class {c!r} has only {len(recs)} recording(s) left for the split "
                            f"({', '.join(files[i].name for i in recs)}); data.files.split = "
                            f"{list(files_cfg.get('split'))} needs {needed} per class. Pick test and "
                            f"validation recordings by condition (data.files.test = {{load = [3]}}), "
                            f"set split = [1, 0, 0], or data.files.by_time = true to cut each "
                            f"recording in time (reported as such)")
        order = rng.permutation(recs)
        bounds = np.cumsum([0] + split_counts_nonzero(len(recs), shares))
        for s in range(len(SPLITS)):
            assign[order[bounds[s]:bounds[s + 1]]] = s

    # --- windows ---------------------------------------------------------------------------
    parts = {s: [] for s in range(len(SPLITS))}  # split -> [(recording id, windows)]
    selects = True
    no_val = not (assign == 1).any() and not (by_time and shares[1] > 0)
    for i, sig in enumerate(signals):
        where = str(files[i])
        if i in time_split:
            for s, (a, b) in enumerate(_time_segments(sig.size, shares, window)):
                if b > a:
                    w = train_window if s == 0 else window
                    parts[s].append((i, windows(sig[a:b], w, overlap, f"{where} ({SPLITS[s]} part)")))
        elif assign[i] == 0 and no_val:
            # Nothing held out to select on: the recording's tail watches the curves only.
            (a, b), (c, d) = _time_segments(sig.size, [0.85, 0.15], train_window)
            if d - c >= window and b - a >= train_window:
                parts[0].append((i, windows(sig[a:b], train_window, overlap, where)))
                parts[1].append((i, windows(sig[c:d], window, overlap, where)))
            else:
                parts[0].append((i, windows(sig, train_window, overlap, where)))
            selects = False
        else:
            s = int(assign[i])
            parts[s].append((i, windows(sig, train_window if s == 0 else window, overlap, where)))

    out = {"classes": classes, "recordings": [str(f) for f in files], "selects": selects,
           "split": {"test_by": {k: sorted(v) for k, v in test_sel.items()},
                     "val_by": {k: sorted(v) for k, v in val_sel.items()},
                     "by_time": by_time, "val_selects": selects}}
    for s, name in enumerate(SPLITS):
        if not parts[s]:
            raise UserError(f"the {name} split is empty; add recordings, pick them with "
                            f"data.files.{name} = {{column = [values]}}, or change data.files.split")
        x = np.concatenate([w for _, w in parts[s]]).astype(np.float32)
        y = np.concatenate([np.full(len(w), index[labels[i]]) for i, w in parts[s]])
        rec = np.concatenate([np.full(len(w), i) for i, w in parts[s]])
        out[name] = (x, y.astype(np.int64), rec.astype(np.int64))
    columns = list(test_sel)
    test_recs = out["test"][2]
    out["test_unseen"] = np.array([_matches(conds[i], test_sel) for i in test_recs], dtype=bool)
    out["test_group"] = np.array(
        [_group(conds[i], columns) if columns else
         ("time-split (recordings also in training)" if i in time_split else "held-out recordings")
         for i in test_recs])
    return out


def split_counts_nonzero(n: int, fractions) -> list[int]:
    """Recordings per split for a class of n: largest remainders, at least one for every
    split with a positive share, none for a zero share."""
    fractions = np.asarray(fractions, dtype=np.float64)
    positive = np.flatnonzero(fractions > 0)
    counts = np.zeros(len(fractions), dtype=int)
    counts[positive] = split_counts(n, fractions[positive])
    return counts.tolist()
