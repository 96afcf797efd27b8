"""`drsn-edge monitor`: stream a recording through the board as if it were the sensor.

    drsn-edge monitor                         # the bundled test recording, board `make flash` started
    drsn-edge monitor --recording run.mat     # any recording training/recordings.py reads
    drsn-edge monitor --realtime              # at the pace of data.fs_hz
    drsn-edge monitor --port /dev/ttyACM0     # a real board

The recording (physical units) becomes int16 samples at data.sensor_full_scale
(drsn_edge.preprocess.to_int16) and goes to the board in STREAM chunks of at most one hop
(firmware_gen/harness/monitor.h). The board answers a verdict for every window: its start
sample, the class, the int8 output, the CRC-32 of the int8 input it preprocessed, and a
smoothed decision over the last monitor.smooth_windows windows. The host computes the same
from the same samples with drsn_edge.preprocess, firmware_gen.tflm_oracle.run and `smooth`
(below, the integer rule of monitor.h) and compares every window bit for bit.

Reports: build/reports/monitor.{json,md} and plots/monitor.png. Exit code 0 when every
verdict, output and preprocessed input equals the host's, 1 when any differs; bad input
and link failures raise UserError (one line, exit 2).
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from drsn_edge.config import section
from drsn_edge.errors import UserError

# The budget the real-time margin is measured against: a 168 MHz Cortex-M4F (STM32F405,
# the netduinoplus2's part). Instructions are a lower bound on its cycles.
BUDGET_HZ = 168_000_000
RECORDING_NAME = "monitor_recording.npz"
# The bundled recording: seconds of the synthetic rig per segment, and the classes in turn
# (normal, then a fault that appears mid-way).
BUNDLED_SEGMENTS = (("normal", 2.0), ("inner_race_014", 2.0))


# --- the one definition of the smoothing (mirrors firmware_gen/harness/monitor.c) -----------

def argmax(outputs: np.ndarray) -> np.ndarray:
    """Class of each int8 output row: the largest value, the lowest index on ties."""
    return np.asarray(outputs).reshape(len(outputs), -1).argmax(axis=1).astype(np.int64)


def smooth(classes, outputs, mode: str, n: int) -> np.ndarray:
    """The smoothed decision after each window, over the last `n` windows (fewer at the
    start): "majority": the most frequent class, ties going to the tied class seen most
    recently; "mean": argmax of the summed int8 outputs (= of the mean probability), the
    lowest index on ties. Integers only, like the board."""
    if mode not in ("majority", "mean"):
        raise ValueError(f"smoothing mode {mode!r} is not majority or mean")
    if n < 1:
        raise ValueError(f"smoothing over {n} windows")
    classes = np.asarray(classes, np.int64).reshape(-1)
    outputs = np.asarray(outputs, np.int64).reshape(len(classes), -1)
    out = np.empty(len(classes), np.int64)
    for k in range(len(classes)):
        lo = max(0, k + 1 - n)
        if mode == "mean":
            out[k] = int(outputs[lo:k + 1].sum(axis=0).argmax())
            continue
        recent = classes[lo:k + 1]
        counts = np.bincount(recent, minlength=outputs.shape[1])
        most = counts.max()
        out[k] = next(int(c) for c in recent[::-1] if counts[c] == most)
    return out


def window_starts(n_samples: int, window: int, hop: int) -> np.ndarray:
    """First sample of every whole window of a stream of n_samples: 0, hop, 2 hop, ..."""
    if n_samples < window:
        return np.zeros(0, np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def expected(model: bytes, samples: np.ndarray, hop: int, mode: str, n: int) -> dict:
    """What the board must answer for an int16 stream: per window its start, int8 input,
    output, class and smoothed class (host: preprocess + TFLM + smooth)."""
    from drsn_edge import preprocess
    from firmware_gen import tflm_oracle
    inp = tflm_oracle.model_inputs(model)[0]
    window = int(np.prod(inp.shape))
    starts = window_starts(len(samples), window, hop)
    if not len(starts):
        raise UserError(f"the recording holds {len(samples)} samples, fewer than one window "
                        f"of {window}; give a longer recording")
    windows = np.lib.stride_tricks.sliding_window_view(samples, window)[starts]
    x = preprocess.preprocess(windows, float(inp.scale), int(inp.zero_point))
    y = tflm_oracle.run(model, x.reshape(len(starts), *inp.shape[1:])).reshape(len(starts), -1)
    classes = argmax(y)
    return {"start": starts, "input": x, "output": y, "class": classes,
            "smoothed": smooth(classes, y, mode, n)}


# --- the recording ----------------------------------------------------------------------------

def bundled_signal(cfg: dict) -> np.ndarray:
    """A few seconds of the synthetic rig, normal then a fault (BUNDLED_SEGMENTS), at
    data.fs_hz, each segment at unit RMS (physical units, like the training windows before
    noise). Deterministic: the same config gives the same samples."""
    from training import signals
    fs = float(cfg["data"]["fs_hz"])
    seed = int(cfg.get("seed", 0))
    parts = []
    for i, (name, seconds) in enumerate(BUNDLED_SEGMENTS):
        n = int(round(seconds * fs))
        label = signals.CLASSES.index(name)
        x, y, _ = signals.generate(1, n, fs, seed=seed * 1000 + 77 + i, loads=[1.0],
                                   rig_seed=seed)
        seg = x[y == label][0].astype(np.float64)
        parts.append(seg / np.sqrt(np.mean(seg ** 2)))
    return np.concatenate(parts)


def save_bundled(cfg: dict, signal: np.ndarray) -> Path:
    """Write the bundled recording under build/monitor/ (an .npz training/recordings.py
    reads: `signal` and `fs_hz`), unless the same one is there already."""
    path = artifacts.paths()["build"] / "monitor" / RECORDING_NAME
    fs = float(cfg["data"]["fs_hz"])
    if path.is_file():
        try:
            with np.load(path) as z:
                if np.array_equal(z["signal"], signal) and float(z["fs_hz"]) == fs:
                    return path
        except (OSError, ValueError, KeyError):
            pass
    with artifacts.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, signal=signal, fs_hz=np.float64(fs))
    return path


def bundled_truth(cfg: dict) -> list[dict]:
    """The bundled recording's segments: class and [start, end) sample."""
    fs = float(cfg["data"]["fs_hz"])
    out, at = [], 0
    for name, seconds in BUNDLED_SEGMENTS:
        n = int(round(seconds * fs))
        out.append({"class": name, "start": at, "end": at + n})
        at += n
    return out


def load_recording(cfg: dict, path: str | None) -> tuple[np.ndarray, str, list[dict] | None,
                                                     np.ndarray | None]:
    """(int16 samples to stream, their source, the bundled recording's segments, the bundled
    float signal to save) for a recording file or, without one, the bundled recording."""
    from drsn_edge import preprocess
    from training import recordings
    files = cfg["data"]["files"]
    fs = float(cfg["data"]["fs_hz"])
    full_scale = float(cfg["data"]["sensor_full_scale"])
    if path:
        signal = recordings.load_signal(path, files["key"], fs, resample=files["resample"])
        return preprocess.to_int16(signal, full_scale), str(path), None, None
    signal = bundled_signal(cfg)
    where = artifacts.paths()["build"] / "monitor" / RECORDING_NAME
    return (preprocess.to_int16(signal, full_scale), f"bundled test recording {where}",
            bundled_truth(cfg), signal)


# --- the stage ----------------------------------------------------------------------------------

def settings(cfg: dict, window: int) -> dict:
    m = dict(section(cfg, "monitor"))
    m["hop"] = int(m["hop"]) or window // 2
    if m["hop"] > window:
        raise UserError(f"monitor.hop = {m['hop']} is longer than one window (data.window = "
                        f"{window}); give 1..{window}, or 0 for half a window")
    return m


def run(cfg: dict, recording: str | None = None, realtime: bool | None = None) -> int:
    from firmware_gen import stage, tflm_oracle
    from runner import hil
    started = time.perf_counter()
    model_file, model = stage.read_model(cfg)
    inp = tflm_oracle.model_inputs(model)[0]
    window = int(np.prod(inp.shape))
    m = settings(cfg, window)
    if realtime is None:
        realtime = bool(m["realtime"])
    m["realtime_run"] = realtime
    samples, source, truth, bundled = load_recording(cfg, recording or m["recording"] or None)
    if len(samples) < window:
        raise UserError(f"{source} holds {len(samples)} samples, fewer than one window of "
                        f"{window}; give a longer recording")
    h = hil.settings(cfg)
    target = hil.resolve_target(h)
    fs = float(cfg["data"]["fs_hz"])
    with hil.connect(target, h) as dev:
        info = hil.check_board(dev, model, model_file, target)
        if bundled is not None:
            save_bundled(cfg, bundled)
        exp = expected(model, samples, m["hop"], m["smooth"], m["smooth_windows"])
        print(f"monitor: {len(samples):,} samples ({len(samples) / fs:.2f} s) from {source} "
              f"to the {info.board} at {target.url}, hop {m['hop']}, {m['smooth']} over "
              f"{m['smooth_windows']}{', real time' if realtime else ''}")
        got = stream(dev, samples, m, fs, realtime, info, exp)
    report = build_report(cfg, info, target, source, samples, exp, got, m, fs, truth,
                          time.perf_counter() - started)
    written = write_report(report, samples, fs, truth)
    print(summary_line(report, written))
    return 0 if report["bit_exact"] and report["preprocessing_bit_exact"] else 1


def class_names(n: int) -> list[str]:
    from training.signals import CLASSES
    return list(CLASSES) if n == len(CLASSES) else [f"class {i}" for i in range(n)]


def stream(dev, samples: np.ndarray, m: dict, fs: float, realtime: bool, info,
           exp: dict | None = None) -> dict:
    """The whole recording through the board: MONITOR, then STREAM chunks of at most one
    hop (paced at fs when realtime), the last one with END. Prints a line per verdict."""
    ack = dev.monitor(m["hop"], m["smooth"], m["smooth_windows"])
    per_frame = (info.max_payload - 1) // 2
    chunk = max(1, min(m["hop"], per_frame))
    names = class_names(info.output.size)
    cols: dict[str, list] = {k: [] for k in ("start", "cls", "smoothed", "work_pre", "work",
                                             "input_crc", "output")}
    t0 = time.monotonic()
    last = None
    behind = 0.0     # real time: how far the answers fell behind the signal, at most
    for at in range(0, len(samples), chunk):
        part = samples[at:at + chunk]
        end = at + chunk >= len(samples)
        due = t0 + (at + len(part)) / fs      # when a sensor would have delivered the chunk
        if realtime and due > time.monotonic():
            time.sleep(due - time.monotonic())
        v = dev.stream(part, end=end)
        behind = max(behind, time.monotonic() - due)
        last = v
        for i in range(len(v.start)):
            k = len(cols["start"])
            for key in ("start", "cls", "smoothed", "work_pre", "work", "input_crc"):
                cols[key].append(int(getattr(v, key)[i]))
            cols["output"].append(v.output[i])
            print(verdict_line(k, cols, i, v, names, fs, exp), flush=True)
    n = len(cols["start"])
    out = {k: np.array(cols[k], np.int64) for k in cols if k != "output"}
    out["output"] = (np.stack(cols["output"]) if n else
                     np.zeros((0, info.output.size), np.int8))
    out.update(ack=vars(ack), seconds=time.monotonic() - t0, chunk=chunk, behind=behind,
               received=last.received if last else 0,
               tail=last.until_next if last else 0, link=vars(dev.stats).copy())
    return out


def verdict_line(k: int, cols: dict, i: int, v, names: list[str], fs: float,
                 exp: dict | None) -> str:
    start = int(v.start[i])
    mark = ""
    if exp is not None:
        ok = (k < len(exp["start"]) and start == exp["start"][k]
              and np.array_equal(v.output[i], exp["output"][k])
              and int(v.smoothed[i]) == exp["smoothed"][k])
        mark = "  ok" if ok else "  DIFFERS from host"
    return (f"monitor {k:4d}  t={start / fs:7.3f} s  class {names[v.cls[i]]:<15s} "
            f"smoothed {names[v.smoothed[i]]:<15s}{mark}")


def build_report(cfg: dict, info, target, source: str, samples: np.ndarray, exp: dict,
                 got: dict, m: dict, fs: float, truth, seconds: float) -> dict:
    n_exp, n_got = len(exp["start"]), len(got["start"])
    same_n = n_exp == n_got
    k = min(n_exp, n_got)
    crc = np.array([zlib.crc32(x.tobytes()) for x in exp["input"]], np.int64)
    windows_ok = same_n and all(
        np.array_equal(exp[a][:k], got[b][:k]) for a, b in
        (("start", "start"), ("class", "cls"), ("smoothed", "smoothed"), ("output", "output")))
    pre_ok = same_n and np.array_equal(crc[:k], got["input_crc"][:k])
    first = None
    for i in range(k):
        if (exp["start"][i] != got["start"][i] or exp["smoothed"][i] != got["smoothed"][i]
                or not np.array_equal(exp["output"][i], got["output"][i])
                or crc[i] != got["input_crc"][i]):
            first = i
            break
    scale, zp = float(info.output.scale), int(info.output.zero_point)
    names = class_names(info.output.size)
    prob = (got["output"].astype(np.float64) - zp) * scale
    timeline = [{"start": int(got["start"][i]), "time_s": round(int(got["start"][i]) / fs, 4),
                 "class": int(got["cls"][i]), "class_name": names[int(got["cls"][i])],
                 "probabilities": [round(float(p), 5) for p in prob[i]],
                 "smoothed_class": int(got["smoothed"][i]),
                 "smoothed_name": names[int(got["smoothed"][i])]} for i in range(n_got)]
    work = got["work"].astype(np.float64)
    per_window = float(work.mean()) if n_got else None
    per_second = per_window * fs / m["hop"] if per_window else None
    rt = None
    if per_second:
        rt = {"instructions_per_second_of_signal": round(per_second),
              "budget_hz": BUDGET_HZ, "budget_core": "Cortex-M4F at 168 MHz",
              "load_pct": round(100 * per_second / BUDGET_HZ, 3),
              "margin": round(BUDGET_HZ / per_second, 1),
              "note": "instructions (QEMU -icount) are a lower bound on cycles"
                      if info.work_unit == "instructions" else "measured in cycles"}
    ack = got["ack"]
    return {
        "board": info.board,
        "url": target.url,
        "model_hash": info.model_hash.hex(),
        "source": source,
        "samples": int(len(samples)),
        "fs_hz": fs,
        "seconds_of_signal": round(len(samples) / fs, 3),
        "sensor_full_scale": float(cfg["data"]["sensor_full_scale"]),
        "window": int(ack["window"]),
        "hop": int(m["hop"]),
        "smooth": m["smooth"],
        "smooth_windows": int(m["smooth_windows"]),
        "realtime": bool(m.get("realtime_run", False)),
        "n_windows": n_got,
        "n_windows_expected": n_exp,
        "tail_samples": int(len(samples) - (exp["start"][-1] + ack["window"])) if n_exp else None,
        "bit_exact": bool(windows_ok),
        "preprocessing_bit_exact": bool(pre_ok),
        "first_mismatch": first,
        "work_unit": info.work_unit,
        "instructions_per_window": None if per_window is None else round(per_window, 1),
        "instructions_per_window_max": int(work.max()) if n_got else None,
        "preprocessing_instructions": round(float(got["work_pre"].mean()), 1) if n_got else None,
        "realtime_margin": rt,
        "memory": {"ring_bytes": ack["ring_bytes"], "scratch_bytes": ack["scratch_bytes"]},
        "truth": truth,
        "timeline": timeline,
        "stream_seconds": round(got["seconds"], 2),
        # with --realtime: the most the board's answers lagged behind the signal (the link's
        # pace, not the board's: a 115200-baud UART carries about 5,700 int16 samples/s)
        "behind_realtime_s": round(got["behind"], 3) if m.get("realtime_run") else None,
        "chunk_samples": got["chunk"],
        "link": got["link"],
        "seconds": round(seconds, 2),
    }


def write_report(report: dict, samples: np.ndarray, fs: float, truth) -> dict:
    reports = artifacts.paths()["reports"]
    plot = plot_timeline(report, samples, fs, reports / "plots" / "monitor.png")
    report["plot"] = str(plot)
    artifacts.write_json(reports / "monitor.json", report)
    artifacts.write_text(reports / "monitor.md", markdown(report))
    return {"json": reports / "monitor.json", "md": reports / "monitor.md", "plot": plot}


def plot_timeline(report: dict, samples: np.ndarray, fs: float, dest: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = np.arange(len(samples)) / fs
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, samples, lw=0.3, color="0.3")
    ax.set_ylabel("int16 samples")
    ax.set_title(f"{report['board']}: {report['n_windows']} windows, hop {report['hop']}, "
                 f"{report['smooth']} over {report['smooth_windows']} "
                 f"({'bit-exact' if report['bit_exact'] else 'DIFFERS from host'})")
    for seg in report.get("truth") or []:
        ax.axvspan(seg["start"] / fs, seg["end"] / fs, alpha=0.08,
                   color="C0" if seg["class"] == "normal" else "C3")
        ax.text(seg["start"] / fs, ax.get_ylim()[1] * 0.9, f" truth: {seg['class']}",
                fontsize=8, va="top")
    tl = report["timeline"]
    centre = [(w["start"] + report["window"] / 2) / fs for w in tl]
    names = class_names(len(tl[0]["probabilities"])) if tl else []
    bx.step(centre, [w["class"] for w in tl], where="mid", lw=0.8, label="class per window")
    bx.step(centre, [w["smoothed_class"] for w in tl], where="mid", lw=1.8,
            label=f"smoothed ({report['smooth']})")
    bx.set_yticks(range(len(names)))
    bx.set_yticklabels(names, fontsize=6)
    bx.set_xlabel("time (s)")
    bx.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    with artifacts.atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return dest


def markdown(r: dict) -> str:
    rt = r["realtime_margin"] or {}
    lines = [
        f"# Monitor: {r['board']}",
        "",
        f"Source: {r['source']} ({r['samples']:,} samples, {r['seconds_of_signal']} s at "
        f"{r['fs_hz']:g} Hz, int16 at full scale {r['sensor_full_scale']:g}).",
        f"Window {r['window']}, hop {r['hop']}, smoothing {r['smooth']} over "
        f"{r['smooth_windows']} windows.",
        "",
        "| | |",
        "|---|---|",
        f"| windows | {r['n_windows']} (host expects {r['n_windows_expected']}) |",
        f"| verdicts and outputs bit-exact | **{'yes' if r['bit_exact'] else 'NO'}** |",
        f"| preprocessed inputs bit-exact (CRC-32) | "
        f"**{'yes' if r['preprocessing_bit_exact'] else 'NO'}** |",
        f"| {r['work_unit']} per window (mean) | {r['instructions_per_window']:,} |"
        if r["instructions_per_window"] is not None else "| per window | n/a |",
        f"| of which preprocessing | {r['preprocessing_instructions']:,} |"
        if r["preprocessing_instructions"] is not None else "| preprocessing | n/a |",
        f"| ring + scratch RAM | {r['memory']['ring_bytes']:,} + "
        f"{r['memory']['scratch_bytes']:,} bytes |",
    ]
    if rt:
        lines += [f"| real time: {r['work_unit']} per second of signal | "
                  f"{rt['instructions_per_second_of_signal']:,} ({rt['load_pct']} % of a "
                  f"{rt['budget_core']}; margin {rt['margin']}×; {rt['note']}) |"]
    lines += ["", f"![timeline](plots/monitor.png)", "", "| window | start | time (s) | class | "
              "smoothed |", "|---:|---:|---:|---|---|"]
    for i, w in enumerate(r["timeline"]):
        lines.append(f"| {i} | {w['start']} | {w['time_s']} | {w['class_name']} | "
                     f"{w['smoothed_name']} |")
    return "\n".join(lines) + "\n"


def summary_line(r: dict, written: dict) -> str:
    rt = r["realtime_margin"] or {}
    return (f"monitor: {r['n_windows']} windows on the {r['board']}: "
            f"{'bit-exact' if r['bit_exact'] else 'DIFFERS'} (preprocessing "
            f"{'bit-exact' if r['preprocessing_bit_exact'] else 'DIFFERS'}), "
            f"{r['instructions_per_window']} {r['work_unit']} per window"
            + (f", real-time margin {rt['margin']}× on a 168 MHz Cortex-M4F" if rt else "")
            + f"; wrote {written['json']}, monitor.md, {written['plot']}")
