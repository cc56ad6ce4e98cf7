"""What the Runs page shows of a sweep job: its trials (read from the study), a parallel-coordinates chart
of their parameters against the objective, and the best trial's config ready for a full run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from geoft.app.run_store import RunRecord
from geoft.app.sweep_command import journal_path
from geoft.sweeps.space import apply
from geoft.sweeps.study import open_storage

COMPLETE = optuna.trial.TrialState.COMPLETE
RUNNING = optuna.trial.TrialState.RUNNING


@dataclass(frozen=True)
class TrialRow:
    """One trial of a sweep: Optuna's number and state, its objective value and sampled parameters."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None


@dataclass(frozen=True)
class SweepResults:
    """The trials of a sweep job and the direction its objective is optimised in."""

    trials: list[TrialRow]
    direction: str  # "minimize" or "maximize"

    @property
    def best(self) -> TrialRow | None:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda t: t.value)  # type: ignore[arg-type, return-value]

    def frame(self) -> pd.DataFrame:
        """The trials table: number, state, objective, one column per parameter (its last key part)."""
        rows = [
            {"trial": t.number, "state": t.state, "objective": t.value}
            | {short_name(k): v for k, v in t.params.items()}
            for t in self.trials
        ]
        return pd.DataFrame(rows)


def short_name(key: str) -> str:
    """``model.init_args.lr`` -> ``lr``; the LoRA rank ``...peft_config_kwargs.r`` -> ``lora r``."""
    last = key.rsplit(".", 1)[-1]
    return "lora r" if key.endswith("peft_config_kwargs.r") else last


def load_results(run: RunRecord) -> SweepResults:
    """The sweep's study as it stands (no trials yet while the job is queued).

    A trial still *running* in the study after its job ended was cut short (stopped, killed): it is shown
    as ``interrupted``.
    """
    path = journal_path(run)
    if not path.is_file():
        return SweepResults([], "minimize")
    try:
        study = optuna.load_study(study_name=run.id, storage=open_storage(str(path)))
    except KeyError:  # the journal exists but the study is not written yet
        return SweepResults([], "minimize")
    rows = []
    for trial in study.trials:
        state = trial.state.name.lower()
        if trial.state == RUNNING and not run.is_active:
            state = "interrupted"
        folder = trial.user_attrs.get("run_dir")
        rows.append(
            TrialRow(
                trial.number,
                state,
                trial.value if trial.state == COMPLETE else None,
                dict(trial.params),
                Path(folder) if folder else None,
            )
        )
    return SweepResults(rows, study.direction.name.lower())


def best_config(run: RunRecord, results: SweepResults) -> dict[str, Any] | None:
    """The sweep's config with the best trial's values (what ``best.yaml`` holds), None before one completed."""
    best = results.best
    if best is None:
        return None
    config = yaml.safe_load(run.submitted_config_path.read_text())
    config.pop("run_name", None)  # the full run gets a folder of its own
    return apply(config, best.params)


def parallel_frame(results: SweepResults) -> pd.DataFrame:
    """Long frame for a parallel-coordinates chart: one row per (completed trial, axis).

    Each axis is scaled to 0..1 over the trials (numbers by value, categories by their order of first
    appearance); ``label`` keeps the value as written, and the objective is the last axis.
    """
    done = [t for t in results.trials if t.state == "complete" and t.value is not None]
    if not done:
        return pd.DataFrame(columns=["trial", "axis", "position", "label", "objective"])
    table = pd.DataFrame(
        [{short_name(k): v for k, v in t.params.items()} | {"objective": t.value} for t in done]
    )
    rows = []
    for axis in table.columns:
        column = table[axis]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if numeric:
            values = column.astype(float)
        else:
            order = {v: i for i, v in enumerate(dict.fromkeys(column.astype(str)))}
            values = column.astype(str).map(order).astype(float)
        span = values.max() - values.min()
        scaled = (values - values.min()) / span if span > 0 else values * 0 + 0.5
        for trial, position, label in zip(done, scaled, column):
            rows.append(
                {
                    "trial": trial.number,
                    "axis": axis,
                    "position": float(position),
                    "label": f"{label:.4g}" if numeric else str(label),
                    "objective": trial.value,
                }
            )
    return pd.DataFrame(rows)


def parallel_chart(frame: pd.DataFrame) -> Any:
    """Altair parallel coordinates: one line per trial across the axes, coloured by the objective."""
    import altair as alt

    axes = list(dict.fromkeys(frame["axis"]))
    base = alt.Chart(frame).encode(
        x=alt.X("axis:N", sort=axes, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("position:Q", axis=None, scale=alt.Scale(domain=[0, 1])),
    )
    lines = base.mark_line(opacity=0.8).encode(
        color=alt.Color("objective:Q", scale=alt.Scale(scheme="viridis")),
        detail="trial:N",
        tooltip=["trial:N", "axis:N", "label:N", "objective:Q"],
    )
    points = base.mark_text(dy=-8, fontSize=10).encode(text="label:N")
    return (lines + points).properties(height=300)
