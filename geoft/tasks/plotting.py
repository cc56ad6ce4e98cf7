"""Validation sample figures (image / truth / prediction) and logging them where the logger can.

Figures go to loggers whose ``experiment`` has ``add_figure`` (TensorBoard) or that have
``log_image`` (Weights & Biases). Other loggers (CSV) get none, without a warning: nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; tasks run in servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from geoft.errors import ConfigError  # noqa: E402


def can_log_figures(logger: Any) -> bool:
    """True when ``logger`` can take a matplotlib figure."""
    if logger is None:
        return False
    experiment = getattr(logger, "experiment", None)
    return hasattr(experiment, "add_figure") or hasattr(logger, "log_image")


def log_figure(logger: Any, tag: str, figure: Figure, step: int) -> None:
    """Send ``figure`` to ``logger`` (TensorBoard-like or W&B-like) and close it."""
    try:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_figure"):
            experiment.add_figure(tag, figure, global_step=step)
        elif hasattr(logger, "log_image"):
            logger.log_image(key=tag, images=[figure], step=step)
    finally:
        plt.close(figure)


def to_rgb(image: torch.Tensor, rgb_indices: Sequence[int] | None) -> np.ndarray:
    """``[C, H, W]`` (or ``[C, T, H, W]``, last time step) -> ``[H, W, 3]`` in 0..1 with a 2-98 % stretch."""
    image = image.detach().float().cpu()
    if image.ndim == 4:
        image = image[:, -1]
    channels = image.shape[0]
    if rgb_indices is None:
        rgb_indices = [2, 1, 0] if channels >= 3 else [0, 0, 0]
    bad = [i for i in rgb_indices if not -channels <= i < channels]
    if bad:
        raise ConfigError(
            f"rgb_indices {list(rgb_indices)} out of range for an image with {channels} channels",
            hint="set the task's rgb_indices to the band positions of red, green and blue",
        )
    rgb = image[list(rgb_indices)].permute(1, 2, 0).numpy()
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    finite = rgb[np.isfinite(rgb)]
    if finite.size == 0:
        return np.zeros_like(rgb)
    low, high = np.percentile(finite, [2, 98])
    return np.clip((np.nan_to_num(rgb, nan=low) - low) / max(high - low, 1e-6), 0, 1)


def _as_map(value: torch.Tensor) -> np.ndarray:
    return value.detach().float().cpu().numpy()


def pixel_figure(
    image: torch.Tensor,
    truth: torch.Tensor | None,
    prediction: torch.Tensor,
    rgb_indices: Sequence[int] | None,
    num_classes: int | None,
    title: str,
) -> Figure:
    """Image, truth and prediction side by side; categorical colours when ``num_classes`` is set."""
    panels = 3 if truth is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 4))
    axes[0].imshow(to_rgb(image, rgb_indices))
    axes[0].set_title("image")
    style: dict[str, Any]
    if num_classes is not None:
        style = {
            "cmap": "tab20" if num_classes > 10 else "tab10",
            "vmin": 0,
            "vmax": 19 if num_classes > 10 else 9,
        }
        style["interpolation"] = "nearest"
    else:
        pred = _as_map(prediction)
        values = pred[np.isfinite(pred)]
        if truth is not None:
            t = _as_map(truth)
            values = np.concatenate([values, t[np.isfinite(t)]])
        vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        style = {"cmap": "viridis", "vmin": vmin, "vmax": vmax}
    index = 1
    if truth is not None:
        axes[index].imshow(_as_map(truth), **style)
        axes[index].set_title("truth")
        index += 1
    axes[index].imshow(_as_map(prediction), **style)
    axes[index].set_title("prediction")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_figure(
    image: torch.Tensor,
    truth: str | None,
    prediction: str,
    rgb_indices: Sequence[int] | None,
    title: str,
) -> Figure:
    """Image with the true and predicted labels in the title (classification)."""
    fig, ax = plt.subplots(1, 1, figsize=(4, 4.4))
    ax.imshow(to_rgb(image, rgb_indices))
    ax.axis("off")
    ax.set_title(
        f"truth: {truth}\nprediction: {prediction}" if truth is not None else f"prediction: {prediction}"
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["can_log_figures", "label_figure", "log_figure", "pixel_figure", "to_rgb"]


def reconstruction_figure(
    image: torch.Tensor,
    masked: torch.Tensor,
    reconstruction: torch.Tensor,
    rgb_indices: Sequence[int] | None,
    title: str,
) -> Figure:
    """Input, input with the hidden patches blank, and the reconstruction (visible patches from the input)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, panel, name in zip(axes, (image, masked, reconstruction), ("image", "masked", "reconstruction")):
        ax.imshow(to_rgb(panel, rgb_indices))
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
