"""What `drsn-edge hil` found, for machines and for people.

build/reports/
    hil.json    board, model_hash, input_kind ("test set" | "file" | "random" | "raw"), n_vectors, bit_exact,
                mismatches (count, first few), raw: preprocessing_bit_exact and preprocessing
                (mismatch counts, first few, work per window and its share of an inference),
                accuracy {device, tflm, qat, float} per noise type and SNR, vectors per
                condition, instructions_per_inference, seconds, vectors_per_second, link and
                board counters (summed over the boards), results (lost, duplicated), boards
                (one entry per board: url, board, model_hash, vectors, vectors_per_second,
                n_bit_exact, requeued, link, failed)
    hil.xml     JUnit: per condition one bit-exactness and one accuracy-parity test case,
                plus one for the link (every vector answered exactly once) and, with several
                boards, one per board (failed by wrong answers, skipped if it dropped out)
    hil.md      the same for people, with the plots
    plots/hil_accuracy_vs_snr.png, plots/hil_confusion.png
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from training import dataset

FIRST_MISMATCHES = 10
ACC_LABELS = {"device": "device", "tflm": "TFLM host", "qat": "QAT (Keras)",
              "float": "float (Keras)"}


def nested(values: dict, vs) -> dict:
    """{condition index: value} -> {"clean": v, noise: {snr: v}} (or {name: v})."""
    out: dict = {}
    for ci, v in values.items():
        kind, snr = vs.conditions[ci]
        if snr is None:
            out[kind] = v
        else:
            out.setdefault(kind, {})[dataset.format_snr(snr)] = v
    return out


def _accuracy(correct: np.ndarray, vs, mask: np.ndarray | None = None) -> dict:
    acc = {}
    for ci in range(len(vs.conditions)):
        sel = vs.cond == ci
        if mask is not None:
            sel &= mask
        if sel.any():
            acc[ci] = round(float(np.mean(correct[sel])), 4)
    return acc


def build(cfg, target, info, model_file, vs, run: dict, ref: np.ndarray, host: dict,
          seconds_total: float) -> dict:
    n = len(vs)
    dev = run["out"].reshape(n, -1)
    tflm = ref.reshape(n, -1)
    if tflm.dtype == np.uint8:      # a uint8 output (final QUANTIZE): the device's bytes as uint8
        dev = np.ascontiguousarray(dev).view(np.uint8)
    if dev.dtype == np.float32 or tflm.dtype == np.float32:
        # A float32 output (final DEQUANTIZE): bit-exact is the same bytes; the distance is
        # in units in the last place (the difference of the bit patterns, same sign).
        bits = [np.ascontiguousarray(a, "<f4").view("<i4").astype(np.int64) for a in (dev, tflm)]
        lsb = np.abs(bits[0] - bits[1]).max(axis=1)
    else:
        lsb = np.abs(dev.astype(np.int16) - tflm.astype(np.int16)).max(axis=1)
    wrong = np.flatnonzero(lsb > 0)
    first = [{"index": int(i), "condition": vs.condition_name(i),
              "window": None if vs.window is None else int(vs.window[i]),
              "max_lsb": int(lsb[i]), "device": dev[i].tolist(), "tflm": tflm[i].tolist()}
             for i in wrong[:FIRST_MISMATCHES]]

    pred = {"device": dev.argmax(1), "tflm": tflm.argmax(1)}
    avail = host["available"]
    for k in ("qat", "float"):
        if host.get(k) is not None:
            pred[k] = np.where(avail, np.nan_to_num(host[k]).argmax(1), -1)
    accuracy, per_cond = None, None
    if vs.y is not None:
        accuracy = {}
        for k, p in pred.items():
            mask = avail if k in ("qat", "float") else None
            accuracy[k] = nested(_accuracy(p == vs.y, vs, mask), vs)
    per_cond = nested({ci: int(np.sum(vs.cond == ci)) for ci in range(len(vs.conditions))}, vs)
    bit_exact_by = nested({ci: int(np.sum(lsb[vs.cond == ci] == 0))
                           for ci in range(len(vs.conditions))}, vs)

    work = run["work"].astype(np.int64)
    quiet = run["quiet"]
    basis = work[quiet] if quiet.any() else work
    per_inference = int(np.median(basis)) if len(basis) else None
    streamed = run["streamed"]
    confusion = None
    if vs.y is not None and vs.classes:
        from quantize.parity import confusion as confusion_matrix
        confusion = confusion_matrix(vs.y, pred["device"], len(vs.classes)).tolist()

    pre = _preprocessing(cfg, vs, run, per_inference) if vs.raw is not None else None
    boards = []
    who = run.get("who")
    for i, entry in enumerate(run.get("boards") or []):
        mine = (who == i) if who is not None else np.zeros(n, bool)
        boards.append({**entry, "n_bit_exact": int(np.sum(lsb[mine] == 0)),
                       "mismatches": int(np.sum(lsb[mine] > 0))})
    names = list(dict.fromkeys(b["board"] for b in boards if b["board"])) or [info.board]

    parity = {"device_equals_tflm": bool(np.array_equal(pred["device"], pred["tflm"]))}
    if accuracy:
        for k in ("qat", "float"):
            if k in accuracy:
                parity[f"max_gap_pp_device_vs_{k}"] = _max_gap(accuracy["device"], accuracy[k])
    return {
        "stage": "hil",
        "board": ", ".join(names),
        "board_kind": target.kind,
        "url": target.url,
        "firmware_version": info.firmware_version,
        "model": str(model_file),
        "model_name": info.model_name,
        "model_hash": info.model_hash.hex(),
        "source": vs.source,
        "input_kind": vs.input_kind,
        **({"preprocessing_bit_exact": pre["bit_exact"], "preprocessing": pre} if pre else {}),
        "classes": vs.classes,
        "n_vectors": n,
        "n_conditions": len(vs.conditions),
        "bit_exact": bool(len(wrong) == 0),
        "n_bit_exact": int(n - len(wrong)),
        "bit_exact_per_condition": bit_exact_by,
        "mismatches": {"count": int(len(wrong)), "first": first},
        "accuracy": accuracy,
        "vectors_per_condition": per_cond,
        "accuracy_note": host.get("note", ""),
        "parity": parity,
        "confusion_device": confusion,
        "work_unit": info.work_unit,
        "instructions_per_inference": per_inference if info.work_unit == "instructions" else None,
        "work": {
            "unit": info.work_unit,
            "per_inference": per_inference,
            "min": int(work.min()), "max": int(work.max()),
            "measured_on": int(quiet.sum()) if quiet.any() else n,
            "note": "median over the vectors of the first request, which runs with the link "
                    "idle; later requests overlap the next transfer, whose receive interrupts "
                    "add to the count (see min/max)",
        },
        "seconds": round(run["seconds"], 2),
        "seconds_total": round(seconds_total, 2),
        "vectors_per_second": round(streamed / run["seconds"], 2) if run["seconds"] > 0 else None,
        "streamed_vectors": streamed,
        "resumed_vectors": run["resumed"],
        "target": _throughput_target(streamed, run["seconds"]),
        "results": {"expected": n, "received": n - run.get("lost", 0),
                    "lost": run.get("lost", 0), "duplicated": run.get("duplicated", 0),
                    "repeats_dropped": run["link"].get("stale_frames", 0)},
        "boards": boards,
        "n_boards": len(boards),
        "n_boards_failed": sum(1 for b in boards if b["failed"]),
        "link": {"depth": run["depth"], "batch": run["batch"], **run["link"]},
        "serial": serial_bound(target.baud, run["link"], streamed),
        "board_counters": run["board_counters"],
    }


# Rates a real board's serial link could run at (boards/uart.py says which a UART reaches).
SERIAL_RATES = (115200, 460800, 921600, 1000000, 2000000)


def serial_bound(baud: int, link: dict, vectors: int) -> dict | None:
    """The most vectors per second a serial line could carry for this run's traffic: 8N1 is
    10 bits per byte, and the line is full duplex, so the busier direction sets the pace.
    An emulated board's socket has no baud rate; the figures say what a real one would do."""
    sent, received = link.get("bytes_sent", 0), link.get("bytes_received", 0)
    if vectors <= 0 or not sent:
        return None
    per_vector = max(sent, received) / vectors
    return {
        "baud": baud,
        "bytes_sent_per_vector": round(sent / vectors, 1),
        "bytes_received_per_vector": round(received / vectors, 1),
        "vectors_per_second_at_baud": round(baud / 10 / per_vector, 1),
        "vectors_per_second_by_baud": {str(r): round(r / 10 / per_vector, 1)
                                       for r in SERIAL_RATES},
        "note": "upper bound from the bytes on the wire (framing and retries included); "
                "a real board's compute time per vector adds to it unless it overlaps the "
                "next transfer",
    }


def _preprocessing(cfg, vs, run: dict, per_inference: int | None) -> dict:
    """Raw mode: the board's int8 inputs against drsn_edge.preprocess on the host."""
    n = len(vs)
    dev = run["pre_in"].reshape(n, -1)
    host = vs.x.reshape(n, -1)
    lsb = np.abs(dev.astype(np.int16) - host.astype(np.int16))
    differing = (lsb > 0).sum(axis=1)
    wrong = np.flatnonzero(differing)
    first = []
    for i in wrong[:FIRST_MISMATCHES]:
        at = int(np.argmax(lsb[i] > 0))
        first.append({"index": int(i), "condition": vs.condition_name(i),
                      "samples_differing": int(differing[i]), "max_lsb": int(lsb[i].max()),
                      "first_sample": at, "device": int(dev[i, at]), "host": int(host[i, at])})
    # The median over every window: the count depends on the window (tiny amplitudes take a
    # slower path, silent ones a faster one), so the one quiet request is no typical figure.
    work = run["pre_work"].astype(np.int64)
    per_window = int(np.median(work)) if len(work) else None
    return {
        "bit_exact": bool(len(wrong) == 0),
        "n_bit_exact": int(n - len(wrong)),
        "mismatches": {"count": int(len(wrong)), "samples": int(differing.sum()), "first": first},
        "definition": "drsn_edge/preprocess.py (board: dk_preprocess_s16)",
        "sensor_full_scale": float(cfg["data"]["sensor_full_scale"]),
        "work_per_window": per_window,
        "work_min": int(work.min()), "work_max": int(work.max()),
        "work_note": "median over all windows, in the unit of work (instructions under QEMU "
                     "-icount); silent windows are the minimum, tiny amplitudes (a final shift "
                     "below 32) the slow path",
        "share_of_inference": (round(per_window / per_inference, 4)
                               if per_window is not None and per_inference else None),
    }


# The project's throughput target: >= 1000 vectors verified in <= 60 s on the default board.
TARGET_VECTORS, TARGET_SECONDS = 1000, 60.0


def _throughput_target(streamed: int, seconds: float) -> dict:
    """The target, and the time this run's rate gives for its 1000 vectors."""
    projected = TARGET_VECTORS * seconds / streamed if streamed and seconds > 0 else None
    return {"vectors": TARGET_VECTORS, "seconds": TARGET_SECONDS,
            "seconds_for_target_vectors": round(projected, 1) if projected else None,
            "met": bool(projected is not None and projected <= TARGET_SECONDS)}


def _max_gap(a: dict, b: dict) -> float:
    gaps = []
    for k, v in a.items():
        if isinstance(v, dict):
            gaps += [abs(v[s] - b[k][s]) for s in v if s in b.get(k, {})]
        elif k in b:
            gaps.append(abs(v - b[k]))
    return round(100 * max(gaps), 2) if gaps else 0.0


def _flat(d: dict | None) -> dict[str, float]:
    """{"clean": a, "pink": {"-5": b}} -> {"clean": a, "pink -5 dB": b}."""
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update({f"{k} {s} dB": x for s, x in v.items()})
        else:
            out[k] = v
    return out


# --- files ------------------------------------------------------------------------------------

def write(rep: dict) -> list[Path]:
    p = artifacts.paths()
    files = [artifacts.write_json(p["reports"] / "hil.json", rep),
             artifacts.write_text(p["reports"] / "hil.xml", junit(rep))]
    plots = _plots(rep, p["plots"])
    files.append(artifacts.write_text(p["reports"] / "hil.md", markdown(rep, plots)))
    return files + plots


# Device and TFLM coincide when all is well, so each curve gets its own line style and
# marker: a hidden curve would look like a missing one.
_STYLES = {"device": dict(lw=3.5, marker="o", ms=9, mfc="none", alpha=0.55),
           "tflm": dict(lw=1.5, ls="--", marker="x", ms=7),
           "qat": dict(lw=1.2, ls=":", marker="s", ms=4),
           "float": dict(lw=1.2, ls="-.", marker="^", ms=4)}


def accuracy_plot(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    acc = rep["accuracy"]
    kinds = [k for k, v in acc["device"].items() if isinstance(v, dict)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), sharey=True,
                             squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for name in ("device", "tflm", "qat", "float"):
            curve = (acc.get(name) or {}).get(kind)
            if not curve:
                continue
            snrs = sorted(curve, key=float)
            label = ACC_LABELS[name] + (f" ({rep['board']})" if name == "device" else "")
            ax.plot([float(s) for s in snrs], [100 * curve[s] for s in snrs], label=label,
                    **_STYLES[name])
        ax.set(title=f"{kind} noise", xlabel="SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"on {rep['board']} vs host ({rep['n_vectors']} vectors)")
    with artifacts.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _plots(rep: dict, where: Path) -> list[Path]:
    from training import plots
    made = []
    acc = rep["accuracy"]
    if acc and any(isinstance(v, dict) for v in acc["device"].values()):
        path = where / "hil_accuracy_vs_snr.png"
        accuracy_plot(rep, path)
        made.append(path)
    if rep["confusion_device"] is not None:
        path = where / "hil_confusion.png"
        plots.confusion_matrix(np.array(rep["confusion_device"]), rep["classes"], path,
                               title=f"device ({rep['board']}), all {rep['n_vectors']} vectors")
        made.append(path)
    return made


def _target_line(target: dict) -> str:
    goal = f"{target['vectors']} vectors in <= {target['seconds']:g} s"
    if target["seconds_for_target_vectors"] is None:
        return f"- target: {goal}: not measured (no vectors streamed)"
    return (f"- target: {goal}: {'met' if target['met'] else '**missed**'} "
            f"({target['vectors']} vectors at this rate take {target['seconds_for_target_vectors']} s)")


def junit(rep: dict) -> str:
    """JUnit XML as CI servers read it: one suite, a test case per check."""
    suite = ET.Element("testsuite", name="drsn-edge hil", time=f"{rep['seconds_total']:.2f}")
    props = ET.SubElement(suite, "properties")
    for key in ("board", "model_hash", "n_vectors", "vectors_per_second",
                "instructions_per_inference", "url"):
        ET.SubElement(props, "property", name=key, value=str(rep[key]))
    cases = []
    bit_exact = _flat(rep["bit_exact_per_condition"])
    counts = _flat(rep["vectors_per_condition"])
    by_cond: dict[str, list] = {}
    for m in rep["mismatches"]["first"]:
        by_cond.setdefault(m["condition"], []).append(m)
    for cond, n in counts.items():
        case = ET.Element("testcase", classname="hil.bit_exact", name=cond)
        differ = n - bit_exact[cond]
        if differ:
            listed = ", ".join(f"vector {m['index']} (max {m['max_lsb']} LSB)"
                               for m in by_cond.get(cond, []))
            failure = ET.SubElement(case, "failure", type="mismatch",
                                    message=f"{differ} of {n} outputs differ from TFLM")
            failure.text = (f"first: {listed}; run `drsn-edge hil --debug N` to find the layer"
                            if listed else "see hil.json for the first mismatches")
        cases.append(case)
    acc = rep["accuracy"]
    if acc:
        dev, tflm = _flat(acc["device"]), _flat(acc["tflm"])
        qat, flt = _flat(acc.get("qat")), _flat(acc.get("float"))
        for cond, a in dev.items():
            case = ET.Element("testcase", classname="hil.accuracy", name=cond)
            if a != tflm.get(cond):
                ET.SubElement(case, "failure", type="accuracy",
                              message=f"device accuracy {a:.4f} != TFLM host {tflm.get(cond)}")
            out = ET.SubElement(case, "system-out")
            out.text = (f"device {a:.4f}, TFLM {tflm.get(cond)}, QAT {qat.get(cond)}, "
                        f"float {flt.get(cond)}, vectors {counts.get(cond)}")
            cases.append(case)
    if rep.get("input_kind") == "raw":
        pre = rep["preprocessing"]
        case = ET.Element("testcase", classname="hil.preprocessing", name="int8_input_bit_exact")
        if not pre["bit_exact"]:
            ET.SubElement(case, "failure", type="mismatch",
                          message=f"{pre['mismatches']['count']} of {rep['n_vectors']} "
                                  f"preprocessed inputs differ from drsn_edge.preprocess")
        cases.append(case)
    if rep["n_boards"] > 1:
        # A farm: one case per board. A board that dropped out is skipped (the others did
        # its work, and the run's verdict does not change); wrong answers fail its case.
        for b in rep["boards"]:
            case = ET.Element("testcase", classname="hil.board", name=b["url"])
            if b["mismatches"]:
                ET.SubElement(case, "failure", type="mismatch",
                              message=f"{b['mismatches']} of {b['vectors']} outputs of this "
                                      f"board differ from TFLM")
            elif b["failed"]:
                ET.SubElement(case, "skipped", message=f"dropped out: {b['failed']}")
            ET.SubElement(case, "system-out").text = (
                f"board {b['board']}, {b['vectors']} vectors, {b['vectors_per_second']} "
                f"vectors/s, {b['requeued']} handed to other boards")
            cases.append(case)
    link = ET.Element("testcase", classname="hil.link", name="every_vector_answered_once")
    res = rep["results"]
    if res["lost"] or res["duplicated"]:
        ET.SubElement(link, "failure", type="link",
                      message=f"{res['lost']} lost, {res['duplicated']} duplicated")
    ET.SubElement(link, "system-out").text = ", ".join(f"{k}={v}" for k, v in rep["link"].items())
    cases.append(link)
    suite.extend(cases)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    root = ET.Element("testsuites", name="drsn-edge", tests=str(len(cases)),
                      failures=str(failures), errors="0")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def markdown(rep: dict, plots: list[Path]) -> str:
    verdict = ("all outputs bit-exact to the TFLM host runtime" if rep["bit_exact"] else
               f"**{rep['mismatches']['count']} of {rep['n_vectors']} outputs differ from TFLM**")
    lines = [
        f"# Hardware in the loop: {rep['board']}",
        "",
        f"- board: `{rep['board']}` ({rep['board_kind']}) at `{rep['url']}`, firmware "
        f"{rep['firmware_version']}",
        f"- model: `{rep['model']}` ({rep['model_name']}), sha256 `{rep['model_hash']}`",
        f"- vectors: {rep['n_vectors']} from {rep['source']} (input kind: {rep.get('input_kind', 'test set')}), "
        f"{rep['n_conditions']} conditions",
        f"- result: {verdict}",
        *([_preprocessing_line(rep)] if rep.get("input_kind") == "raw" else []),
        f"- speed: {rep['streamed_vectors']} vectors in {rep['seconds']} s = "
        f"**{rep['vectors_per_second']} vectors/s** ({rep['link']['depth']} requests in flight, "
        f"{rep['link']['batch']} vectors each)"
        + (f"; {rep['resumed_vectors']} resumed from an earlier run"
           if rep["resumed_vectors"] else ""),
        _target_line(rep["target"]),
        f"- work: {rep['work']['per_inference']} {rep['work']['unit']} per inference "
        f"(median, idle link; {rep['work']['min']}..{rep['work']['max']} over the run)",
        "",
    ]
    acc = rep["accuracy"]
    counts = _flat(rep["vectors_per_condition"])
    exact = _flat(rep["bit_exact_per_condition"])
    cols = [k for k in ("device", "tflm", "qat", "float") if acc and k in acc]
    lines += ["| condition | vectors | bit-exact |" + "".join(f" {ACC_LABELS[k]} |" for k in cols),
              "|---|---:|---:|" + "---:|" * len(cols)]
    flat = {k: _flat(acc[k]) for k in cols}
    for cond, n in counts.items():
        cells = "".join(f" {100 * flat[k][cond]:.1f} % |" if cond in flat[k] else " – |"
                        for k in cols)
        lines.append(f"| {cond} | {n} | {exact[cond]} |{cells}")
    lines.append("")
    if rep["accuracy_note"]:
        lines += [f"Note: {rep['accuracy_note']}.", ""]
    if rep["mismatches"]["first"]:
        lines += ["## First mismatches", "", "| vector | condition | max LSB |", "|---:|---|---:|"]
        lines += [f"| {m['index']} | {m['condition']} | {m['max_lsb']} |"
                  for m in rep["mismatches"]["first"]]
        lines += ["", "`drsn-edge hil --debug N` compares vector N layer by layer.", ""]
    if rep["boards"]:
        lines += ["## Boards", "",
                  "| # | url | board | vectors | vectors/s | bit-exact | handed back | failed |",
                  "|---:|---|---|---:|---:|---:|---:|---|"]
        for i, b in enumerate(rep["boards"], 1):
            vps = "–" if b["vectors_per_second"] is None else f"{b['vectors_per_second']:g}"
            failed = (b["failed"] or "").replace("|", "\\|")
            lines.append(f"| {i} | `{b['url']}` | {b['board'] or '–'} | {b['vectors']} | "
                         f"{vps} | {b['n_bit_exact']} | {b['requeued']} | {failed or 'no'} |")
        lines.append("")
    link = rep["link"]
    lines += ["## Link", "",
              f"requests {link['requests']}, retries {link['retries']}, timeouts "
              f"{link['timeouts']}, damaged frames {link['bad_frames']}, damaged requests "
              f"{link['link_errors']}, repeats dropped {link['stale_frames']}, reconnects "
              f"{link['reconnects']}; board: " +
              ", ".join(f"{k} {v}" for k, v in rep["board_counters"].items()), ""]
    ref = rep.get("reference")
    if ref:
        lines += [f"TFLM reference: {ref['run_here']} vectors run through the TFLM host runtime "
                  f"here, {ref['reused_from_quantize']} answers taken from the quantize stage's "
                  f"run with the same model and input bytes ({ref['spot_checked']} of those "
                  f"recomputed as a check: "
                  f"{'DIFFERED, cache dropped' if ref['spot_check_failed'] else 'equal'}).", ""]
    ser = rep.get("serial")
    if ser:
        lines += [f"On a serial line (8N1) this traffic, {ser['bytes_sent_per_vector']:g} bytes "
                  f"sent and {ser['bytes_received_per_vector']:g} received per vector, allows at "
                  f"most: " + ", ".join(f"{int(b):,} baud {v:g} vectors/s" for b, v in
                                        ser["vectors_per_second_by_baud"].items()) +
                  " (the board's compute time comes on top).", ""]
    reports = artifacts.paths()["reports"]
    for plot in plots:
        rel = plot.relative_to(reports) if plot.is_relative_to(reports) else plot
        lines.append(f"![{plot.stem}]({rel.as_posix()})")
    return "\n".join(lines) + "\n"


def _preprocessing_line(rep: dict) -> str:
    pre = rep["preprocessing"]
    verdict = ("every preprocessed int8 input equals drsn_edge.preprocess" if pre["bit_exact"] else
               f"**{pre['mismatches']['count']} preprocessed inputs differ from "
               f"drsn_edge.preprocess** ({pre['mismatches']['samples']} samples)")
    share = (f", {100 * pre['share_of_inference']:.2f} % of an inference"
             if pre["share_of_inference"] is not None else "")
    return (f"- raw input (int16 at full scale {pre['sensor_full_scale']:g}): {verdict}; "
            f"preprocessing {pre['work_per_window']} {rep['work']['unit']} per window{share}")


def summary_line(rep: dict, files: list[Path]) -> str:
    head = (f"hil: {rep['n_bit_exact']}/{rep['n_vectors']} vectors bit-exact on "
            f"{rep['board']}" if rep["bit_exact"] else
            f"hil: MISMATCH: {rep['mismatches']['count']} of {rep['n_vectors']} vectors differ "
            f"from TFLM on {rep['board']} (first: vector "
            f"{rep['mismatches']['first'][0]['index']}; try --debug N)")
    speed = f"{rep['vectors_per_second']} vectors/s"
    work = (f", {rep['work']['per_inference']} {rep['work']['unit']}/inference"
            if rep["work"]["per_inference"] else "")
    acc = ""
    if rep["accuracy"]:
        d, t = _flat(rep["accuracy"]["device"]), _flat(rep["accuracy"]["tflm"])
        acc = (f"; device accuracy {'equals' if d == t else 'DIFFERS from'} host TFLM "
               f"(mean {100 * np.mean(list(d.values())):.1f} %)")
    raw = ""
    if rep.get("input_kind") == "raw":
        pre = rep["preprocessing"]
        raw = ("; raw input: preprocessing bit-exact" if pre["bit_exact"] else
               f"; raw input: PREPROCESSING MISMATCH in {pre['mismatches']['count']} vectors "
               f"(first: vector {pre['mismatches']['first'][0]['index']})")
        if pre["share_of_inference"] is not None:
            raw += f", {pre['work_per_window']} {rep['work']['unit']}/window"
    farm = ""
    if rep["n_boards"] > 1 or rep["n_boards_failed"]:
        failed = [b for b in rep["boards"] if b["failed"]]
        farm = f"; {rep['n_boards']} boards" + (
            f", {len(failed)} failed ({', '.join(b['url'] for b in failed)}: see hil.md)"
            if failed else "")
    return f"{head} ({speed}{work}){acc}{raw}{farm}; wrote {files[0]}"
