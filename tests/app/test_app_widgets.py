"""Chart data for the Runs page: curves with gaps (val metrics only at epoch ends) stay visible."""

from __future__ import annotations

from geoft.app.widgets import comparison_frame, curves_frame, line_chart


def _records(offset: float) -> list[dict]:
    recs: list[dict] = []
    for step in range(1, 9):
        recs.append({"step": step, "epoch": (step - 1) // 4, "train/loss": 1.0 / step + offset})
        if step % 4 == 0:  # validation at each epoch end only
            recs.append({"step": step, "epoch": (step - 1) // 4, "val/mIoU": 0.1 * step + offset})
    return recs


def test_comparison_keeps_every_validation_point_of_each_run() -> None:
    frames = {"run a": curves_frame(_records(0.0)), "run b": curves_frame(_records(0.05))}
    overlay = comparison_frame(frames, "val/mIoU")
    assert list(overlay.columns) == ["run a", "run b"] and overlay.index.name == "step"
    chart = line_chart(overlay, list(overlay.columns))
    points = chart.data  # the long table the chart draws: NaN gaps dropped per series
    assert len(points) == 4
    assert sorted(points.loc[points.metric == "run b", "value"].round(2)) == [0.45, 0.85]


def test_comparison_of_a_metric_no_run_logged_is_empty() -> None:
    assert comparison_frame({"run a": curves_frame(_records(0.0))}, "val/F1").empty


def test_a_chart_with_many_series_keeps_its_plot_height() -> None:
    """Streamlit fits the legend into the chart's height: ten series must not squash the plot flat."""
    import pandas as pd

    from geoft.app.widgets import CHART_PLOT_HEIGHT

    frame = pd.DataFrame({f"val/m{i}": [0.1, 0.2] for i in range(10)}, index=pd.Index([1, 2], name="step"))
    two, ten = line_chart(frame, list(frame.columns[:2])), line_chart(frame, list(frame.columns))
    assert two.height >= CHART_PLOT_HEIGHT + 60
    assert ten.height - two.height == 22 * 4  # four more legend rows of two names
