"""Real vibration recordings: loading, windowing, labelling and a split by recording.

Formats: MATLAB .mat (the CWRU files, e.g. variable X097_DE_time; structs such as MFPT's
`bearing.gs` or Paderborn's named channels are read as dotted names; v7.3 files through h5py;
a channel of a matrix by number), text columns (.csv, .txt, .tsv, .dat, .lvm, or a listed
file of any other name that reads as numbers; a preamble and a header row are allowed, time
columns are skipped and give the rate, decimal commas are read), .wav and .npz. Labels come
from a manifest CSV ("path,label", paths relative to the manifest) or from the file name.

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

TEXT_SUFFIXES = (".csv", ".txt", ".tsv", ".dat", ".lvm")
SUFFIXES = (".mat", ".csv", ".npz", ".wav", ".txt", ".tsv", ".dat", ".lvm")
SPLITS = ("train", "val", "test")

# CWRU-style short names: IR007, B014, OR021@6 (the @ position is ignored).
_CWRU_NAME = re.compile(r"(?<![a-z])(ir|b|or)[_-]?(007|014|021)(?!\d)")
_CWRU_LOCATION = {"ir": "inner_race", "b": "ball", "or": "outer_race"}


# ---------------------------------------------------------------------------- loading

# What to do with the other formats data sets come in (HUSTbearing's Excel workbooks, NI's TDMS).
_CONVERT = {".xls": "save the sheet as .csv (a column per channel) and list that, or convert it",
            ".xlsx": "save the sheet as .csv (a column per channel) and list that, or convert it",
            ".tdms": "export its vibration channel (NI's TDMS) as .csv or .mat, or convert it"}

# Variable names that state a file's sample rate (a scalar in Hz). CWRU's *RPM variables are
# shaft speeds, not rates, so they are not among them.
RATE_KEYS = ("fs", "fs_hz", "Fs", "sr", "sample_rate", "sampling_rate", "sample_rate_hz")
# ... or its sample interval (seconds per sample): LabVIEW's waveform export (the KAIST rig's
# .mat files) writes `x_values.increment` beside `y_values.values`.
INTERVAL_KEYS = ("increment", "dt")


def load_signal(path, key: str = "", fs_hz: float | None = None, rate: float | None = None,
                resample: bool = False) -> np.ndarray:
    """One recording as a 1-D float64 array, at `fs_hz` when given.

    `key` picks the variable of a .mat/.npz file: an exact name, or a unique name ending in
    it (key="DE_time" fits every CWRU file), or the name of a struct element holding one
    numeric field (key="vibration_1"); "name:2" or "2" picks channel 2 of a matrix (of the
    default variable for a bare number). Default: the variable ending in _DE_time, else the
    only floating-point array. Text files use the column `key` names (header) or numbers
    (from 1), else their first numeric column that is not a time axis; .wav files channel
    `key` (from 1) of several. The recording's rate is `rate` (e.g. a manifest's fs_hz
    column), else what the file states (a scalar named in RATE_KEYS, a .wav header, a time
    column's step); when it differs from `fs_hz` the signal is resampled (`resample`) or
    refused.
    """
    return _load(path, key, fs_hz, rate, resample)[0]


def _load(path, key: str, fs_hz: float | None, rate: float | None, resample: bool):
    """load_signal, and where the recording's rate came from: "manifest", "file" or None
    (stated nowhere: taken to be fs_hz)."""
    path = Path(path)
    source = "manifest" if rate is not None else None
    if not path.is_file():
        raise UserError(f"{path}: recording not found; fix the path in data.files.paths "
                        f"or in the manifest")
    suffix = path.suffix.lower()
    if suffix in (".mat", ".npz", ".wav"):
        arrays = {".mat": _read_mat, ".npz": _read_npz, ".wav": _read_wav}[suffix](path)
        variable, channel = _channel_key(key, arrays)
        name = _pick(arrays, variable, path)
        stated = _file_rate(arrays, name)
        data = _channel(arrays[name], name, channel, path, named=bool(variable))
    elif suffix in TEXT_SUFFIXES or _reads_as_numbers(path):
        data, stated = _read_csv(path, key)
    else:
        hint = _CONVERT.get(suffix, "convert it")
        raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                        f"{hint} to one of {', '.join(SUFFIXES)}")
    if rate is None and stated is not None:
        rate, source = stated, "file"
    return at_rate(_as_signal(data, path), rate, fs_hz, resample, path), rate, source


def _read_mat(path: Path) -> dict:
    import scipy.io
    try:
        raw = scipy.io.loadmat(path)
    except NotImplementedError:
        return _read_mat73(path)
    except Exception as exc:  # scipy raises several types for damaged files
        raise UserError(f"{path}: not a readable MATLAB file ({exc}); re-save it from "
                        f"MATLAB with save(..., '-v7') or convert it to .csv/.npz") from None
    arrays: dict = {}
    for k, v in raw.items():
        if not k.startswith("__"):
            _flatten(k, v, arrays)
    return arrays


def _flatten(name: str, value, out: dict, depth: int = 0) -> None:
    """MATLAB structs and cells as dotted names: `bearing.gs`; an element of a struct array
    by its Name field when it has one (Paderborn's `...Y.vibration_1.Data`), else `[i]`."""
    if depth > 6 or not isinstance(value, np.ndarray):
        out[name] = value
        return
    items = value.reshape(-1)
    if value.dtype.names:
        label = next((f for f in value.dtype.names if f.lower() == "name"), None)
        tags = [_text(item[label]) if label and items.size > 1 else None for item in items]
        for i, item in enumerate(items):
            tag = tags[i] if tags.count(tags[i]) == 1 else None   # a repeated name: by index
            base = name if items.size == 1 else f"{name}.{tag}" if tag else f"{name}[{i}]"
            for field in value.dtype.names:
                if not (field == label and tag):
                    _flatten(f"{base}.{field}", item[field], out, depth + 1)
    elif value.dtype == object:
        for i, item in enumerate(items):
            _flatten(name if items.size == 1 else f"{name}[{i}]", item, out, depth + 1)
    else:
        out[name] = value


def _text(value) -> str | None:
    a = np.asarray(value).reshape(-1)
    return str(a[0]) if a.size == 1 and a.dtype.kind == "U" and str(a[0]) else None


def _read_mat73(path: Path) -> dict:
    import h5py
    arrays: dict = {}
    try:
        with h5py.File(path, "r") as f:
            # MATLAB writes column-major, so h5py sees the transpose; flattening undoes it.
            # Struct fields are groups: their datasets become dotted names, as in v5 files.
            # MATLAB's text is uint16 data marked char; #refs# holds what cells point to.
            f.visititems(lambda k, v: arrays.__setitem__(k.replace("/", "."), np.asarray(v))
                         if isinstance(v, h5py.Dataset) and v.dtype.kind in "fiub"
                         and not k.startswith("#") and v.attrs.get("MATLAB_class") != b"char"
                         else None)
    except OSError as exc:
        raise UserError(f"{path}: not a readable MATLAB v7.3 file ({exc}); "
                        f"convert it to .csv/.npz") from None
    return arrays


def _read_wav(path: Path) -> dict:
    """Channels `1`, `2`, ... of a .wav as floats in units of full scale, and its rate `fs`."""
    import warnings
    import scipy.io.wavfile
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # unknown chunks (e.g. LIST metadata) are skipped
            rate, data = scipy.io.wavfile.read(path)
    except Exception as exc:  # scipy raises several types for damaged files
        raise UserError(f"{path}: not a readable .wav file ({exc}); save it as PCM or float "
                        f"WAV, or convert it to .csv/.npz") from None
    if data.dtype.kind in "iu":
        bits = data.dtype.itemsize * 8
        mid = 2 ** (bits - 1) if data.dtype.kind == "u" else 0
        data = (data.astype(np.float64) - mid) / 2 ** (bits - 1)
    if data.size == 0:
        raise UserError(f"{path}: the .wav file holds no samples; it needs at least one window "
                        f"of vibration")
    data = data.reshape(len(data), -1)
    return {"fs": np.array(float(rate)), **{str(c + 1): data[:, c] for c in range(data.shape[1])}}


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc}); save it with "
                        f"numpy.savez(path, signal=array)") from None


def _file_rate(arrays: dict, signal: str = "") -> float | None:
    """A rate the file states: a scalar named in RATE_KEYS (Hz) or INTERVAL_KEYS (seconds per
    sample), in the struct that holds the signal (the nearest first), else at the top, else
    in any struct."""
    parts = signal.split(".")[:-1]
    scopes = [".".join(parts[:n]) + "." for n in range(len(parts), 0, -1)] + [""]
    for scope in scopes:
        for key in RATE_KEYS + INTERVAL_KEYS + tuple("x_values." + k for k in INTERVAL_KEYS):
            rate = _scalar_rate(arrays.get(scope + key), key.split(".")[-1])
            if rate is not None:
                return rate
    for key in RATE_KEYS + INTERVAL_KEYS:
        for name in sorted(n for n in arrays if n.endswith("." + key)):
            rate = _scalar_rate(arrays[name], key)
            if rate is not None:
                return rate
    return None


def _scalar_rate(value, key: str) -> float | None:
    value = np.asarray(value if value is not None else [])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        return None
    number = float(value.reshape(-1)[0])
    if key in INTERVAL_KEYS:
        if not number > 0:
            return None
        number = 1.0 / number
        if abs(number - round(number)) < 1e-6 * number:   # 1 / (1/25600) is 25600.000000000004
            number = float(round(number))
    return number


def _channel_key(key: str, arrays: dict) -> tuple[str, int | None]:
    """data.files.key split into a variable and a channel: `name:2` is channel 2 of the matrix
    `name`, a bare number the channel of the file's default matrix (unless a variable has that
    name: a .wav file's channels are named 1, 2, ...)."""
    if not key or key in arrays:
        return key, None
    if key.isdigit():
        return "", int(key)
    m = re.fullmatch(r"(.+):(\d+)", key)
    return (m.group(1), int(m.group(2))) if m else (key, None)


def _channel(data, name: str, channel: int | None, path: Path, named: bool = True):
    """One channel of a matrix [samples, channels] (or [channels, samples]: the shorter side
    counts channels); a matrix without a channel is refused with the key that picks one."""
    a = np.asarray(data)
    dims = [s for s in a.shape if s > 1]
    if len(dims) == 2 and isinstance(data, np.ndarray):
        a = a.reshape(dims)   # (1, samples, 4) as (samples, 4)
        axis = 1 if a.shape[1] <= a.shape[0] else 0
        count = a.shape[axis]
        if channel is None:
            pick = f"'{name}:1'" if named else f"'1' (this file's {name}; or '{name}:1')"
            raise UserError(f"{path}: {name} has shape {a.shape}, {count} channels, not one channel; "
                            f"pick one with data.files.key = {pick}, a channel from 1 to {count}")
        if not 1 <= channel <= count:
            raise UserError(f"{path}: {name} has {count} channels (shape {a.shape}), no channel "
                            f"{channel} (data.files.key); give one from 1 to {count}")
        return np.take(a, channel - 1, axis=axis)
    if channel is not None and channel != 1:
        raise UserError(f"{path}: {name} holds one channel (shape {a.shape}), no channel {channel} "
                        f"(data.files.key); set data.files.key to a variable's name")
    return data


def _is_numeric(a) -> bool:
    return isinstance(a, np.ndarray) and (np.issubdtype(a.dtype, np.number)
                                          or a.dtype == bool) and a.size > 1


def _pick(arrays: dict, key: str, path: Path) -> str:
    """The name of the signal to use (see load_signal)."""
    names = sorted(arrays)
    listing = ", ".join(f"{k} {getattr(arrays[k], 'shape', '')}" for k in names) or "none"
    if key:
        if key in arrays:
            return key
        hits = [k for k in names if k.endswith(key)]
        if not hits:   # a struct element by name: its one numeric field
            hits = [k for k in names if (f".{key}." in k or k.startswith(f"{key}."))
                    and _is_numeric(arrays[k])]
        if len(hits) == 1:
            return hits[0]
        what = "several variables match" if hits else "no variable"
        raise UserError(f"{path}: {what} {key!r} (data.files.key); variables present: "
                        f"{listing}; set data.files.key to one of them")
    hits = [k for k in names if k.endswith("_DE_time")]
    if len(hits) > 1:
        # Some CWRU files hold two runs (e.g. 99.mat: X098 and X099): take the file's own.
        number = re.sub(r"\D", "", path.stem)
        own = [k for k in hits if number and re.sub(r"\D", "", k.split("_")[0]) == number.zfill(3)]
        if len(own) == 1:
            return own[0]
        raise UserError(f"{path}: several drive-end signals ({', '.join(hits)}); set "
                        f"data.files.key to the one to use")
    if hits:
        return hits[0]
    numeric = [k for k in names if _is_numeric(arrays[k])]
    if len(numeric) == 1:
        return numeric[0]
    if not numeric:
        raise UserError(f"{path}: no numeric signal in the file (variables: {listing}); "
                        f"store the vibration signal as a numeric array")
    raise UserError(f"{path}: several numeric arrays and none ending in _DE_time "
                    f"(variables: {listing}); set data.files.key to the one to use")


def _read_csv(path: Path, key: str = "") -> tuple[np.ndarray, float | None]:
    """The signal column of a text file, and the rate its time column states (or None).

    The numeric block starts at the first line shaped like the lines in the middle of the
    file (as many fields, numbers where they have numbers); lines of text before it are a
    preamble (the SEU rig's files), the last of them the header when it names the columns (or
    it is the only one), with a units row under the names allowed. Fields are split at tabs,
    semicolons, commas or runs of blanks, whichever every sampled data line has; with tabs,
    semicolons or blanks a comma inside a number is a decimal comma (1,234;5,678). Trailing
    lines whose field is empty or NaN end the column (a spreadsheet's export). The column is
    `key` (a header name, any case, or a number from 1), else the first numeric one after
    leading time columns that neither only switches between two levels (a tachometer's
    pulses) nor is named as speed, torque, voltage...: a time or index column named like one
    (t, time, Time (s), timestamp ... / empty, index, Unnamed: 0), or, without a header, a
    first column that only rises while others follow, or four whole-number clock columns
    hour, minute, second, microsecond (FEMTO/PRONOSTIA). A time column rising in even steps
    gives the rate (seconds; ms / us when its name says so), as does the clock; an index
    gives none."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror}); check the file") from None
    if b"\0" in raw[:65536]:
        raise UserError(f"{path}: not a text file; save the signal as one numeric "
                        f"column of text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:   # a European DAQ's export: "Beschleunigung [m/s²]" in Latin-1
        text = raw.decode("cp1252", errors="replace")
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith(("#", "%"))]
    if not lines:
        raise UserError(f"{path}: the file is empty; it needs one numeric column "
                        f"(one sample per line)")
    delimiter, decimal_comma, sample = _dialect(path, [ln for _, ln in lines], key)

    def fields(line):   # quotes around a field (a spreadsheet's "0.25") are not part of it
        return [f.strip().strip('"') for f in (line.split(delimiter) if delimiter else line.split())]

    def num(field):
        return _number(field.replace(",", ".") if decimal_comma else field)

    def width_of(parts):   # a delimiter closing each line (SEU's "...,0.12,") adds no column
        n = len(parts)
        while n and not parts[n - 1]:
            n -= 1
        return n

    def shape(line):
        parts = fields(line)
        return width_of(parts), frozenset(i for i, f in enumerate(parts) if f and num(f) is not None)

    # The numeric block starts at the first line shaped like the data lines in the middle of
    # the file (as many fields, numbers where they have numbers); text before it is preamble.
    shapes = [shape(ln) for ln in sample]
    width, columns = max(set(shapes), key=shapes.count)
    raw = [len(fields(ln)) for ln in sample]
    raw_width = max(set(raw), key=raw.count)

    def data_like(line):   # or as many fields, some empty (pandas writes NaN so), the rest numbers
        n, c = shape(line)
        parts = fields(line)
        return (n == width and columns <= c) or (
            len(parts) == raw_width and bool(c) and c <= columns and all(not f or i in c for i, f in enumerate(parts)))

    start = next((i for i, (_, line) in enumerate(lines) if data_like(line)), None) if columns else None
    if start is None:
        if len(lines) == 1:
            raise UserError(f"{path}: only a header row, no samples; add one sample per line")
        raise UserError(f"{path}: no column of numbers (line {lines[-1][0]}: "
                        f"{lines[-1][1].strip()[:60]!r}); the file needs a numeric column")
    # The header: the line before the data when it is the first, or names as many columns;
    # lines of that width just above it (a units row under the names) are header rows too.
    def names_columns(line):   # as many names as columns (one more: a closing empty column)
        return width > 1 and width <= width_of(fields(line)) <= len(fields(lines[start][1]))

    header, above = None, []
    if start == 1 or (start > 1 and names_columns(lines[start - 1][1])):
        header = lines[start - 1][1]
        j = start - 1
        while j > 0 and names_columns(lines[j - 1][1]) and not shape(lines[j - 1][1])[1]:
            j -= 1
            above.append(fields(lines[j][1]))
    rows = lines[start:]
    row = fields(rows[0][1])
    row = row[:width_of(row)]   # a separator closing the line is no column
    names = fields(header) if header is not None else []
    names += [""] * (len(row) - len(names)) if header is not None else []
    numeric = [i for i, f in enumerate(row) if f and num(f) is not None]
    parsed: dict[int, np.ndarray] = {}

    def column_values(column):
        if column in parsed:
            return parsed[column]
        cells = [(parts[column].strip().strip('"') if column < len(parts) else "")
                 for parts in ((line.split(delimiter) if delimiter else line.split()) for _, line in rows)]
        end = len(cells)
        while end > 1 and cells[end - 1].lower() in _BLANK:   # trailing empty / NaN lines
            end -= 1
        cells = cells[:end]
        if decimal_comma:
            cells = [c.replace(",", ".") for c in cells]
        try:
            values = np.array(cells, dtype=np.float64) if all(cells) else None
        except ValueError:
            values = None
        if values is None:   # name the first line that is not a number
            for (lineno, _), cell in zip(rows, cells):
                if not cell or _number(cell) is None:
                    raise UserError(f"{path}: line {lineno}, column {column + 1}: {cell!r} is not a "
                                    f"number; fix or remove that line")
            values = np.array([_number(c) for c in cells], dtype=np.float64)
        parsed[column] = values
        return values

    # Leading time columns, and the rate they give.
    lead, rate = [], None
    clock = _clock(column_values, numeric) if header is None and len(numeric) > 4 else None
    if clock is not None:
        lead = numeric[:4]
        rate = _rate_of(clock, "us")
    elif len(numeric) > 1:
        name = names[numeric[0]] if header is not None else None
        values = column_values(numeric[0])
        kind = _lead_kind(values, name)
        if kind is None and above:   # "Time" over a units row "s" or "ms"
            name = " ".join(r[numeric[0]] for r in above[::-1] + [names] if numeric[0] < len(r))
            kind = _lead_kind(values, name)
        if kind is not None:
            lead = numeric[:1]
            rate = _rate_of(values, name) if kind == "time" else None
    if key:
        header_rows = [[n.lower() for n in r] for r in [names] + above]
        column = next((r.index(key.lower()) for r in header_rows if key.lower() in r), None)
        if column is None and key.isdigit() and 0 < int(key) <= len(row):
            column = int(key) - 1
        if column is None:
            listing = ", ".join(n or "(unnamed)" for n in names) if header is not None \
                else f"{len(row)} unnamed columns"
            raise UserError(f"{path}: no column {key!r} (data.files.key); columns: {listing}; "
                            f"set data.files.key to a column name or number (from 1)")
        return column_values(column), rate if lead and column not in lead else None
    if len(numeric) > 256:
        raise UserError(f"{path}: {len(numeric)} numbers per line in {len(rows)} lines: the samples "
                        f"seem to run along the lines; store one sample per line (a column per "
                        f"channel), or pick a column with data.files.key")
    # Not vibration: a column whose name says speed, tachometer, torque ... (Fraunhofer's
    # unbalance set: V_in, Measured_RPM before Vibration_1), or that only pulses.
    candidates = [c for c in numeric if c not in lead]
    named = [c for c in candidates if not (header is not None and _NOT_VIBRATION.search(names[c])
                                           and not _VIBRATION.search(names[c]))]
    for column in named:
        values = column_values(column)
        if len(candidates) == 1 or not _two_levels(values):
            return values, rate
    return column_values((named or candidates)[0]), rate   # every column pulses: the first


_BLANK = ("", "nan", "na", "n/a", "null", "none", "-")
# ... unless the name says vibration too (acc_load_side, Temperature_compensated_acc)
_VIBRATION = re.compile(r"acc|vib|(^|[^a-z])g($|[^a-z])|drive.?end|fan.?end", re.IGNORECASE)
_NOT_VIBRATION = re.compile(r"rpm|speed|tach|encoder|torque|temp|current|volt|v_in\b|force|"
                            r"pressure|trigger|phasor|pulse|load", re.IGNORECASE)


def _dialect(path: Path, lines: list[str], key: str = "") -> tuple[str | None, bool, list[str]]:
    """(delimiter, decimal comma, the sampled lines) from data lines in the middle of the file
    (past any preamble, before any trailing junk): the separator every one of them has, tab
    first; blanks when the commas sit inside numbers between blanks. Lines of whole numbers
    split by single commas could be decimal commas (1,25) or two integer columns: columns when
    a header names them, a second field carries a sign, the first column rises in even steps
    (an index or a time axis) or data.files.key picks a column; refused otherwise."""
    mid = len(lines) // 2
    sample = [ln for ln in lines[mid:mid + 200] if re.search(r"\d", ln)][:50] or \
             [ln for ln in lines[:mid][::-1] if re.search(r"\d", ln)][:50] or lines[:1]
    delimiter = next((d for d in ("\t", ";", ",") if all(d in ln for ln in sample)), None)
    if delimiter == "," and all(len(ln.split()) > 1 and all(
            re.fullmatch(r"[-+]?\d*,?\d+([eE][-+]?\d+)?", f) for f in ln.split()) for ln in sample):
        delimiter = None   # blanks between numbers with decimal commas: 0,25  -1,5
    cells = [f.strip().strip('"') for ln in sample for f in (ln.split(delimiter) if delimiter else ln.split())]
    if delimiter != ",":
        comma = any(re.fullmatch(r"[-+]?\d*,\d+([eE][-+]?\d+)?", f) for f in cells)
        return delimiter, comma and not any("." in f for f in cells), sample
    whole = [re.fullmatch(r"[-+]?\d+", f) is not None for f in cells]
    if not (cells and all(whole)):
        return delimiter, False, sample
    rows = [[f.strip().strip('"') for f in ln.split(",")] for ln in sample]
    if any(re.fullmatch(r"0\d+", f) for f in cells):   # 0,046: a fraction's leading zero
        raise UserError(f"{path}: every line is whole numbers split by commas, some with a leading "
                        f"zero ({sample[0].strip()!r}): decimal commas? Save it with '.' as the "
                        f"decimal mark, or with ';' between columns")
    firsts = [int(r[0]) for r in rows]
    steps = {b - a for a, b in zip(firsts, firsts[1:])}
    rising = len(firsts) > 2 and len(steps) == 1 and steps.pop() > 0     # an index or a time axis
    signed = any(f[:1] in "+-" for r in rows for f in r[1:])             # 3,-25 is no number
    head = [f.strip().strip('"') for f in lines[0].split(",")]
    named = len(head) == len(rows[0]) and not any(_number(f) is not None for f in head)
    if all(len(r) == 2 for r in rows) and not (rising or signed or named or key):
        raise UserError(f"{path}: every line is two whole numbers split by a comma "
                        f"({sample[0].strip()!r}): a decimal comma, or two columns of integers? "
                        f"Save it with '.' as the decimal mark or with ';' between columns, or set "
                        f"data.files.key to the column (1 or 2) if they are columns")
    return delimiter, False, sample


def _clock(column_values, numeric: list[int]) -> np.ndarray | None:
    """Microseconds since the first line when the first four numeric columns are a clock:
    whole hours (< 24), minutes (< 60), seconds (< 61) and microseconds (< 10^6) that never
    go back, but for midnight (FEMTO/PRONOSTIA's acc_*.csv, recorded around the clock);
    else None."""
    parts = []
    for column, top in zip(numeric[:4], (24, 60, 61, 1_000_000)):
        values = column_values(column)
        if len(values) < 3 or np.any(values != np.round(values)) or values.min() < 0 \
                or values.max() >= top:
            return None
        parts.append(values)
    if len({len(p) for p in parts}) != 1:
        return None
    h, m, s, us = parts
    t = ((h * 60 + m) * 60 + s) * 1e6 + us
    day = 86_400e6
    # Midnight: the clock falls by most of a day; every later line is a day on.
    t = t + np.concatenate([[0.0], np.cumsum(np.diff(t) < -day / 2)]) * day
    t = t - t[0]
    return t if np.all(np.diff(t) >= 0) and t[-1] > 0 else None


def _two_levels(values: np.ndarray) -> bool:
    """A column that only switches between two levels (a tachometer's or key phasor's pulse
    train) or is flat: nine in ten samples within a tenth of the range of its bottom or top.
    Vibration, even a pure tone, spends far more time in between."""
    if values.size < 8:
        return False
    lo, hi = np.percentile(values, [1, 99])
    span = hi - lo
    if not span > 0:
        return True
    low, high = values < lo + 0.1 * span, values > hi - 0.1 * span
    return (low | high).mean() > 0.9 and min(low.mean(), high.mean()) > 0.01


_TIME_NAME = re.compile(r"^(t|time|times|timestamp|elapsed|secs?|seconds?|x value|zeit|temps|tiempo|tempo|"
                        r"ms|msec|milliseconds?|us|µs|usec|microseconds?)\b",
                        re.IGNORECASE)
_INDEX_NAME = re.compile(r"^(|index|idx|n|no|sample|samples|unnamed.*)$", re.IGNORECASE)


def _lead_kind(values: np.ndarray, name: str | None) -> str | None:
    """'time', 'index' or None for a file's first numeric column, by its header name, or
    (no header) by its values: an integer count by 1 is an index, anything else that only
    rises is time (vibration never does)."""
    if name is not None:
        label = name.replace("_", " ").strip()
        return "time" if _TIME_NAME.match(label) else "index" if _INDEX_NAME.match(label) else None
    if len(values) < 3 or not np.all(np.diff(values) > 0):
        return None
    return "index" if np.all(np.diff(values) == 1) and np.all(values == np.round(values)) else "time"


def _rate_of(values: np.ndarray, name: str | None) -> float | None:
    """Samples per second of a time column that rises in even steps (to within 1 % and the
    resolution the numbers were printed with), in seconds, or ms / us when its name says
    so; None for uneven steps."""
    steps = np.diff(values)
    if len(steps) < 2:
        return None
    step = (values[-1] - values[0]) / len(steps)
    printed = _resolution(values[:1000])
    if not step > 0 or np.any(np.abs(steps - step) > 0.01 * step + printed):
        return None
    label = (name or "").replace("_", " ")
    unit = 1e-3 if re.search(r"\bms\b|millisec", label, re.I) else \
        1e-6 if re.search(r"\bus\b|µs|microsec", label, re.I) else 1.0
    rate = 1.0 / (step * unit)
    return float(round(rate)) if abs(rate - round(rate)) < 1e-3 * rate else rate


def _resolution(values: np.ndarray) -> float:
    """The smallest power of ten the values are whole multiples of (down to 1e-12)."""
    for d in range(13):
        q = 10.0 ** -d
        if np.all(np.abs(values / q - np.round(values / q)) < 1e-6):
            return q
    return 0.0


def _reads_as_numbers(path: Path) -> bool:
    """A file of another name that is text whose first lines hold numbers (e.g. the IMS
    rig's files, named by their time stamp)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    rows = [r for r in head.splitlines()[:5] if r.strip()]
    return bool(rows) and all(_number(f) is not None
                              for r in rows[-2:] for f in re.split(r"[,;\s]+", r.strip()))


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
            # A folder's notes (readme.txt) are not recordings: other text than .csv counts
            # only when it reads as numbers.
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in SUFFIXES
                           and not _is_manifest_of(q, manifest)
                           and (q.suffix.lower() in (".mat", ".csv", ".npz", ".wav", ".lvm")
                                or _reads_as_numbers(q)))
            if not found:
                other = sorted({q.suffix.lower() for q in p.iterdir() if q.suffix.lower() in _CONVERT})
                advice = f" ({'/'.join(other)} files: {_CONVERT[other[0]]})" if other else ""
                raise UserError(f"{p}: folder has no {'/'.join(SUFFIXES)} recordings{advice}; "
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
    signals, rates = [], {"manifest": 0, "file": 0, "assumed": 0, "resampled": 0}
    for f, cond in zip(files, conds):
        sig, rate, source = _load(f, key, fs_hz, manifest_rate(f, cond), resample)
        windows(sig[:window], window, overlap, source=str(f))  # at least one window long
        signals.append(sig)
        if source or fs_hz:   # with no data.fs_hz nothing is assumed (nor resampled)
            rates[source or "assumed"] += 1
        rates["resampled"] += int(rate is not None and fs_hz is not None and abs(rate - fs_hz) >= 1e-6 * fs_hz)
    if rates["assumed"] and fs_hz:
        # Most public sets (CWRU, XJTU-SY, SEU...) store no rate: say what was taken.
        print(f"data: {rates['assumed']} of {len(files)} recordings state no sample rate; taken as "
              f"data.fs_hz = {fs_hz:g} Hz (a manifest fs_hz column gives each file's own)")
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
                     "by_time": by_time, "val_selects": selects,
                     "sample_rates": {"from_manifest": rates["manifest"], "from_file": rates["file"],
                                      "assumed_fs_hz": rates["assumed"], "resampled": rates["resampled"]}}}
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
