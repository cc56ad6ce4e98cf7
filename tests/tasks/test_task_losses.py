"""Losses by name: every loss with and without ignore_index, NaN safety, combinations, errors."""

from __future__ import annotations

import pytest
import torch

from geoft.errors import ConfigError
from geoft.tasks.losses import TASK_LOSSES, CombinedLoss, build_criterion

SHAPES = {
    "segmentation": ((2, 3, 8, 8), lambda g: torch.randint(0, 3, (2, 8, 8), generator=g)),
    "regression": ((2, 8, 8), lambda g: torch.randn(2, 8, 8, generator=g)),
    "classification": ((6, 3), lambda g: torch.randint(0, 3, (6,), generator=g)),
    "multilabel": ((6, 3), lambda g: (torch.rand(6, 3, generator=g) > 0.5).float()),
}
CASES = [(task, name) for task, names in TASK_LOSSES.items() for name in names]


def _inputs(task: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape, make_target = SHAPES[task]
    return torch.randn(*shape, generator=g).requires_grad_(True), make_target(g)


def _ignore_some(task: str, target: torch.Tensor, ignore: int) -> torch.Tensor:
    target = target.clone()
    if task in ("segmentation", "regression"):
        target[:, :3, :3] = ignore
    elif task == "classification":
        target[:2] = ignore
    else:
        target[:2, 0] = ignore
    return target


@pytest.mark.parametrize(("task", "name"), CASES)
def test_loss_without_ignore_index(task: str, name: str) -> None:
    pred, target = _inputs(task)
    loss = build_criterion(task, name, ignore_index=None)(pred, target)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize(("task", "name"), CASES)
@pytest.mark.parametrize("ignore", [-1, 255])
def test_loss_ignores_ignored_targets(task: str, name: str, ignore: int) -> None:
    pred, target = _inputs(task)
    target = _ignore_some(task, target, ignore)
    criterion = build_criterion(task, name, ignore_index=ignore)
    loss = criterion(pred, target)
    assert torch.isfinite(loss)
    loss.backward()
    grad = pred.grad
    assert torch.isfinite(grad).all()
    # ignored entries get no gradient
    if task == "segmentation":
        assert grad[:, :, :3, :3].abs().max() == 0 and grad.abs().sum() > 0
    elif task == "regression":
        assert grad[:, :3, :3].abs().max() == 0 and grad.abs().sum() > 0
    elif task == "classification":
        assert grad[:2].abs().max() == 0 and grad[2:].abs().sum() > 0
    else:
        assert grad[:2, 0].abs().max() == 0 and grad.abs().sum() > 0


def test_ignore_index_zero_is_a_real_value() -> None:
    """ignore_index=0 (a valid class id) must ignore class-0 pixels, not be treated as 'no ignore'."""
    pred, target = _inputs("segmentation")
    for name in TASK_LOSSES["segmentation"]:
        criterion = build_criterion("segmentation", name, ignore_index=0)
        p = pred.detach().clone().requires_grad_(True)
        criterion(p, target).backward()
        assert p.grad.permute(0, 2, 3, 1)[target == 0].abs().max() == 0, name


def test_everything_ignored_gives_zero_not_nan() -> None:
    pred, target = _inputs("segmentation")
    loss = build_criterion("segmentation", "ce", ignore_index=-1)(pred, torch.full_like(target, -1))
    assert loss.item() == 0.0
    pred, target = _inputs("regression")
    loss = build_criterion("regression", "rmse", ignore_index=None)(
        pred, torch.full_like(target, float("nan"))
    )
    assert loss.item() == 0.0


@pytest.mark.parametrize("name", TASK_LOSSES["regression"])
def test_regression_nan_targets_are_ignored(name: str) -> None:
    pred, target = _inputs("regression")
    with_nan = target.clone()
    with_nan[0, 0, :] = float("nan")
    criterion = build_criterion("regression", name)
    loss = criterion(pred, with_nan)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    assert pred.grad[0, 0].abs().max() == 0
    # equal to the loss over the valid pixels only
    keep = ~torch.isnan(with_nan)
    diff = pred.detach()[keep] - target[keep]
    expected = {
        "mse": (diff**2).mean(),
        "mae": diff.abs().mean(),
        "rmse": (diff**2).mean().sqrt(),
        "huber": torch.nn.functional.huber_loss(pred.detach()[keep], target[keep]),
    }[name]
    assert torch.allclose(loss.detach(), expected, atol=1e-5)


def test_regression_loss_accepts_channel_dim() -> None:
    pred, target = _inputs("regression")
    a = build_criterion("regression", "mse")(pred, target)
    b = build_criterion("regression", "mse")(pred.unsqueeze(1), target)
    assert torch.allclose(a, b)


def test_combined_losses_list_and_weighted_dict() -> None:
    pred, target = _inputs("segmentation")
    ce = build_criterion("segmentation", "ce", ignore_index=-1)(pred, target)
    dice = build_criterion("segmentation", "dice", ignore_index=-1)(pred, target)
    summed = build_criterion("segmentation", ["ce", "dice"], ignore_index=-1)
    assert isinstance(summed, CombinedLoss)
    out = summed(pred, target)
    assert set(out) == {"loss", "ce", "dice"}
    assert torch.allclose(out["loss"], ce + dice)
    weighted = build_criterion("segmentation", {"ce": 1.0, "dice": 0.5}, ignore_index=-1)(pred, target)
    assert torch.allclose(weighted["loss"], ce + 0.5 * dice)


def test_class_weights_change_ce() -> None:
    pred, target = _inputs("segmentation")
    plain = build_criterion("segmentation", "ce")(pred, target)
    weighted = build_criterion("segmentation", "ce", class_weights=[1.0, 5.0, 0.1])(pred, target)
    assert not torch.allclose(plain, weighted)
    # combined: weights go to ce only, dice still works
    out = build_criterion("segmentation", ["ce", "dice"], class_weights=[1.0, 5.0, 0.1])(pred, target)
    assert torch.allclose(out["ce"], weighted)


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="valid names are: ce, dice, focal, jaccard, lovasz"):
        build_criterion("segmentation", "cross_entropy")
    with pytest.raises(ConfigError, match="mse, mae, rmse, huber"):
        build_criterion("regression", ["mse", "l1"])
    with pytest.raises(ConfigError, match="bce, balanced_bce"):
        build_criterion("multilabel", "ce")


def test_bad_loss_configs() -> None:
    with pytest.raises(ConfigError, match="none of the losses"):
        build_criterion("segmentation", "dice", class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="empty"):
        build_criterion("segmentation", [])
    with pytest.raises(ConfigError, match=">= 0"):
        build_criterion("segmentation", {"ce": -1.0})
    custom = torch.nn.L1Loss()
    assert build_criterion("regression", custom) is custom


def test_losses_under_bf16_autocast_are_float32() -> None:
    pred, target = _inputs("segmentation")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = torch.nn.functional.conv2d(pred, torch.eye(3).reshape(3, 3, 1, 1))
        assert logits.dtype == torch.bfloat16
        for name in TASK_LOSSES["segmentation"]:
            loss = build_criterion("segmentation", name, ignore_index=-1)(logits, target)
            assert loss.dtype == torch.float32, name
