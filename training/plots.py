"""Plots a person would rather look at than read: training curves, accuracy vs SNR, confusion.

Shared by every stage (quantize and hil reuse accuracy_vs_snr and confusion_matrix).
Each is written atomically as PNG.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from drsn_edge import artifacts  # noqa: E402


def _save(fig, path) -> None:
    with artifacts.atomic_path(path, suffix=".png") as tmp:
        # No timestamps in the file: reruns give identical bytes.
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def training_curves(histories: dict, path) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, h in histories.items():
        epochs = np.arange(1, len(h["loss"]) + 1)
        line, = ax_loss.plot(epochs, h["loss"], label=f"{name} train")
        ax_loss.plot(epochs, h["val_loss"], "--", color=line.get_color(), label=f"{name} val")
        ax_acc.plot(epochs, h["accuracy"], color=line.get_color(), label=f"{name} train")
        ax_acc.plot(epochs, h["val_accuracy"], "--", color=line.get_color(), label=f"{name} val")
        ax_acc.axvline(h["best_epoch"], color=line.get_color(), alpha=0.3, lw=1)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (vertical line: best epoch kept)",
               ylim=(0, 1.01))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def accuracy_vs_snr(curves: dict, path, linear: dict | None = None, title: str = "") -> None:
    """curves: {label: {noise: {snr: acc}, 'clean': acc}}; one panel per noise type."""
    first = next(iter(curves.values()))
    kinds = [k for k in first if k != "clean"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.8), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for label, acc in curves.items():
            snrs = sorted(acc[kind], key=float)
            ax.plot([float(s) for s in snrs], [100 * acc[kind][s] for s in snrs], "o-", label=label)
        if linear:
            snrs = sorted(linear[kind], key=float)
            ax.plot([float(s) for s in snrs], [100 * linear[kind][s] for s in snrs], "k:",
                    label="linear (spectrum)")
        ax.set(title=f"{kind} noise", xlabel="SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def confusion_matrix(m: np.ndarray, classes: list[str], path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 3, 0.55 * len(classes) + 2.5))
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m, dtype=float), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    _save(fig, path)


def accuracy_by_condition(by_condition: dict, path) -> None:
    """Seen vs unseen operating conditions: accuracy vs SNR (mean over noise types) per
    model, mean over seeds with error bars of one sd."""
    parts = [p for p in ("seen", "unseen") if p in by_condition] or ["all"]
    fig, axes = plt.subplots(1, len(parts), figsize=(5.2 * len(parts), 3.9), sharey=True, squeeze=False)
    for ax, part in zip(axes[0], parts):
        for arch, st in by_condition[part].items():
            kinds = [k for k in st["mean"] if k != "clean"]
            snrs = sorted(st["mean"][kinds[0]], key=float)
            xs = [float(s) for s in snrs] + [max(float(s) for s in snrs) + 5]
            mean = [np.mean([st["mean"][k][s] for k in kinds]) for s in snrs] + [st["mean"]["clean"]]
            sd = [np.mean([st["sd"][k][s] for k in kinds]) for s in snrs] + [st["sd"]["clean"]]
            ax.errorbar(xs, 100 * np.array(mean), yerr=100 * np.array(sd), fmt="o-", capsize=3,
                        label=arch)
        n = len(next(iter(by_condition[part].values()))["seeds"])
        groups = ", ".join(by_condition.get(f"{part}_groups", []))
        ax.set(title=f"{part} conditions ({groups})" if groups else part,
               xlabel=f"SNR (dB); rightmost point: clean  [{n} seeds, bars ±1 sd]")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%), mean over noise types")
    axes[0][0].legend(fontsize=8)
    _save(fig, path)
