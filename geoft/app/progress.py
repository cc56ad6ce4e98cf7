"""Read a run's ``metrics.jsonl``: curves, best values, epoch/step progress and ETA."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoft.runs.events import read_events as read_events  # the pages read events through the app
from geoft.runs.events import read_lines
from geoft.runs.folder import RunDir

_INDEX_KEYS = {"epoch", "step", "global_step", "time", "timestamp", "wall_time", "stage", "split", "lr-step"}


def find_metrics_file(run_dir: Path) -> Path | None:
    """``metrics.jsonl`` in a run folder (or the newest one below it)."""
    return RunDir(run_dir).metrics_file()


def read_metrics(path: Path | None) -> list[dict[str, Any]]:
    """Records of a metrics file; a half-written last line (training in progress) is skipped."""
    records = []
    for rec in read_lines(path):
        if rec.get("event") == "metrics" and isinstance(rec.get("metrics"), dict):
            # geoft's run-folder format: {"event": "metrics", "epoch", "step", "metrics": {...}}
            flat = {k: v for k, v in rec["metrics"].items() if isinstance(v, int | float)}
            flat.update({k: rec[k] for k in ("epoch", "step", "time") if rec.get(k) is not None})
            records.append(flat)
        elif "event" not in rec:
            records.append(rec)
    return records


def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Numeric metric keys in first-seen order (index keys like epoch/step left out)."""
    names: dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if key not in _INDEX_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
                names.setdefault(key, None)
    return list(names)


def lower_is_better(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in ("loss", "error", "rmse", "mae", "mse"))


def best_metrics(path: Path | None) -> dict[str, float]:
    """Best value of each validation/test metric (min for losses and errors, max otherwise)."""
    records = read_metrics(path)
    out: dict[str, float] = {}
    for name in metric_names(records):
        if not any(tag in name.lower() for tag in ("val", "test")):
            continue
        values = [
            float(r[name]) for r in records if isinstance(r.get(name), int | float) and math.isfinite(r[name])
        ]
        if values:
            out[name] = min(values) if lower_is_better(name) else max(values)
    return out


def curves(records: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """``metric -> [(x, value)]`` with x the step when logged, else the epoch."""
    out: dict[str, list[tuple[float, float]]] = {}
    for rec in records:
        x = rec.get("step", rec.get("global_step", rec.get("epoch")))
        if not isinstance(x, int | float):
            continue
        for name in metric_names([rec]):
            value = rec[name]
            if math.isfinite(value):
                out.setdefault(name, []).append((float(x), float(value)))
    return out


@dataclass(frozen=True)
class Progress:
    """Where a training run is: epochs done, fraction, ETA."""

    epoch: int | None
    max_epochs: int | None
    step: int | None
    fraction: float | None
    eta_s: float | None

    def describe(self) -> str:
        parts = []
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch + 1}" + (f"/{self.max_epochs}" if self.max_epochs else ""))
        if self.step is not None:
            parts.append(f"step {self.step}")
        if self.eta_s is not None:
            parts.append(f"ETA {format_duration(self.eta_s)}")
        elif self.epoch == 0 and self.max_epochs and self.max_epochs > 1:
            parts.append("ETA after the first epoch")
        return ", ".join(parts) or "starting..."


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def estimate_progress(
    records: list[dict[str, Any]], max_epochs: int | None, started: float | None, now: float | None = None
) -> Progress:
    """Progress from metric records: epochs finished (and steps into the current one) over ``max_epochs``."""
    now = time.time() if now is None else now
    epochs = [int(r["epoch"]) for r in records if isinstance(r.get("epoch"), int | float)]
    steps = [
        int(r.get("step", r.get("global_step")))
        for r in records
        if isinstance(r.get("step", r.get("global_step")), int | float)
    ]
    epoch = max(epochs) if epochs else None
    step = max(steps) if steps else None
    fraction = None
    if max_epochs and epoch is not None:
        # steps per epoch from the last record of the first finished epoch, when known
        done = epoch
        per_epoch = None
        if step is not None and epoch > 0:
            first = [
                int(r.get("step", -1))
                for r in records
                if r.get("epoch") == 0 and isinstance(r.get("step"), int | float)
            ]
            per_epoch = max(first) + 1 if first else None
        if per_epoch and step is not None:
            fraction = min(1.0, (step + 1) / (per_epoch * max_epochs))
        else:
            fraction = min(1.0, done / max_epochs)
    eta = None
    if fraction and started and fraction > 0:
        elapsed = max(0.0, now - started)
        eta = max(0.0, elapsed / fraction - elapsed)
    return Progress(epoch=epoch, max_epochs=max_epochs, step=step, fraction=fraction, eta_s=eta)


def log_tail(path: Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    """Last ``lines`` lines of a log file ('' when missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def best_and_last(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per validation/test metric: best value (and its epoch) and last value, for the table beside the charts."""
    rows = []
    for name in metric_names(records):
        if not any(tag in name.lower() for tag in ("val", "test")):
            continue
        points = [
            (r.get("epoch"), float(r[name]))
            for r in records
            if isinstance(r.get(name), int | float) and math.isfinite(r[name])
        ]
        if not points:
            continue
        pick = min if lower_is_better(name) else max
        best_epoch, best = pick(points, key=lambda p: p[1])
        rows.append({"metric": name, "best": best, "best epoch": best_epoch, "last": points[-1][1]})
    return rows


def epoch_series(records: list[dict[str, Any]], name: str) -> list[float]:
    """The values of ``name`` in logging order (one per validation epoch for val metrics)."""
    return [
        float(r[name]) for r in records if isinstance(r.get(name), int | float) and math.isfinite(r[name])
    ]
