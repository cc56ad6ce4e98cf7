"""Optimizers and schedulers by name, warm-up + cosine, and LightningCLI's own optimizer blocks."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from geoft.errors import ConfigError
from geoft.tasks import SemanticSegmentationTask
from geoft.tasks.optimizers import build_optimizer, build_scheduler, parameter_groups, warmup_cosine


def _opt(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def _lrs(scheduler: Any, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def test_warmup_cosine_shape() -> None:
    lrs = _lrs(warmup_cosine(_opt(), warmup_iters=4, total_iters=12, start_factor=0.1), 12)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[:5] == sorted(lrs[:5])  # rising during warm-up
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[4:] == sorted(lrs[4:], reverse=True)  # cosine decay afterwards
    assert lrs[-1] < 0.1


def test_schedulers_by_name() -> None:
    cfg = build_scheduler(
        "StepLR", _opt(), {"step_size": 2, "gamma": 0.5, "interval": "step"}, "val/loss", lambda _: 9
    )
    assert cfg["interval"] == "step" and cfg["monitor"] == "val/loss"
    assert _lrs(cfg["scheduler"], 5) == [1.0, 1.0, 0.5, 0.5, 0.25]
    plateau = build_scheduler(
        "ReduceLROnPlateau", _opt(), {"monitor": "val/mIoU", "mode": "max"}, "val/loss", lambda _: 9
    )
    assert plateau["monitor"] == "val/mIoU"
    # WarmupCosine takes the run length from the trainer when total_iters is not given
    seen: list[str] = []
    cfg = build_scheduler(
        "WarmupCosine",
        _opt(),
        {"warmup_iters": 2, "interval": "step"},
        "val/loss",
        lambda i: seen.append(i) or 10,
    )
    assert seen == ["step"] and cfg["scheduler"].optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    # the reference's SequentialLR layout
    seq = build_scheduler(
        "SequentialLR",
        _opt(),
        {
            "schedulers": {
                "LinearLR": {"start_factor": 0.5, "total_iters": 2},
                "CosineAnnealingLR": {"T_max": 4},
            },
            "milestones": [2],
        },
        "val/loss",
        lambda _: 9,
    )
    assert _lrs(seq["scheduler"], 3)[:2] == [0.5, 0.75]


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("StepLR", {"step": 2}, "unknown argument"),
        ("StepLR", {"step_size": 2, "interval": "batch"}, "interval"),
        ("WarmupCosine", {"warmup_iters": 5, "total_iters": 5}, "warmup_iters < total_iters"),
        ("WarmupCosine", {"total_iters": 5}, "warmup_iters"),
        ("WarmupCosine", {"warmup": 5}, "unknown argument"),
        ("SequentialLR", {"schedulers": {"LinearLR": {}}, "milestones": [1]}, "milestones"),
        ("SequentialLR", {"milestones": [1]}, "schedulers"),
        ("LambdaLR", {}, "Python function"),
        ("NotAScheduler", {}, "unknown scheduler"),
    ],
)
def test_scheduler_errors(name: str, hparams: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_scheduler(name, _opt(), hparams, "val/loss", lambda _: 10)


def test_optimizer_errors() -> None:
    params = [nn.Parameter(torch.zeros(1))]
    assert isinstance(build_optimizer("SGD", params, 0.1, {"momentum": 0.9}), torch.optim.SGD)
    with pytest.raises(ConfigError, match="AdamW"):
        build_optimizer("adamw", params, 0.1)
    with pytest.raises(ConfigError, match="task's lr"):
        build_optimizer("SGD", params, 0.1, {"lr": 0.2})
    with pytest.raises(ConfigError, match="frozen"):
        parameter_groups([("a", nn.Parameter(torch.zeros(1), requires_grad=False))], None)


def test_scheduler_runs_in_training(tk: Any) -> None:
    task = SemanticSegmentationTask(
        model=tk.PixelNet(),
        model_args={"num_classes": 3},
        lr=0.1,
        scheduler="WarmupCosine",
        scheduler_hparams={"warmup_iters": 2, "interval": "step", "start_factor": 0.5},
    )
    trainer = tk.trainer(max_epochs=2, limit_val_batches=0)
    trainer.fit(task, tk.DataModule("segmentation", n=8))  # 2 batches x 2 epochs = 4 steps
    config = trainer.lr_scheduler_configs[0]
    assert config.interval == "step"
    assert config.scheduler.last_epoch == 4
    assert trainer.optimizers[0].param_groups[0]["lr"] < 0.1  # decaying after the warm-up
    task = SemanticSegmentationTask(
        model=tk.PixelNet(),
        model_args={"num_classes": 3},
        scheduler="ReduceLROnPlateau",
        scheduler_hparams={"patience": 0},
    )
    trainer = tk.trainer(max_epochs=2)
    trainer.fit(task, tk.DataModule("segmentation", n=8))
    assert trainer.lr_scheduler_configs[0].monitor == "val/loss"


def test_lightning_cli_optimizer_blocks_win(tk: Any) -> None:
    """LightningCLI's own ``optimizer:``/``lr_scheduler:`` blocks replace the task's optimizer settings."""
    from lightning.pytorch.cli import LightningCLI

    config = {
        "model": {
            "model_args": {"num_classes": 3},
            "model": {
                "class_path": "torch.nn.Conv2d",
                "init_args": {"in_channels": 3, "out_channels": 3, "kernel_size": 1},
            },
            "optimizer": "Adam",
            "lr": 0.5,
        },
        "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.123, "momentum": 0.9}},
        "lr_scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 3}},
        "trainer": {"accelerator": "cpu", "logger": False, "enable_checkpointing": False},
    }
    cli = LightningCLI(
        SemanticSegmentationTask,
        tk.DataModule,
        args=config,
        run=False,
        save_config_callback=None,
        parser_kwargs={"exit_on_error": False},
    )
    assert isinstance(cli.model, SemanticSegmentationTask)
    optimizers, schedulers = cli.model.configure_optimizers()
    assert isinstance(optimizers[0], torch.optim.SGD) and optimizers[0].param_groups[0]["lr"] == 0.123
    assert isinstance(schedulers[0], torch.optim.lr_scheduler.StepLR)
    # without those blocks the task's own settings are used
    config.pop("optimizer")
    config.pop("lr_scheduler")
    cli = LightningCLI(
        SemanticSegmentationTask, tk.DataModule, args=config, run=False, save_config_callback=None
    )
    opt = cli.model.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.5


def test_adam_uses_fused_kernel_by_default_and_respects_choice():
    import torch

    from geoft.tasks.optimizers import build_optimizer

    model = torch.nn.Linear(3, 2)
    assert build_optimizer("AdamW", model.parameters(), 1e-3).defaults["fused"] is True
    groups = [{"params": iter([model.weight]), "lr": 1e-2}, {"params": iter([model.bias])}]
    optimizer = build_optimizer("Adam", groups, 1e-3)
    assert optimizer.defaults["fused"] is True
    assert [len(g["params"]) for g in optimizer.param_groups] == [1, 1]
    assert build_optimizer("AdamW", model.parameters(), 1e-3, {"fused": False}).defaults["fused"] is False


def test_every_task_sizes_warmup_cosine_by_the_run_length() -> None:
    from types import SimpleNamespace

    from geoft.tasks import ReconstructionTask
    from geoft.tasks.optimizers import run_length

    trainer = SimpleNamespace(estimated_stepping_batches=40, max_epochs=2)
    assert run_length(trainer, "step") == 40 and run_length(trainer, "epoch") == 2
    with pytest.raises(ConfigError, match="max_epochs"):
        run_length(SimpleNamespace(estimated_stepping_batches=40, max_epochs=-1), "epoch")
    hparams = {"scheduler": "WarmupCosine", "scheduler_hparams": {"warmup_iters": 4, "interval": "step"}}
    tasks = [
        ReconstructionTask(
            model_args={"backbone": "prithvi_eo_tiny", "backbone_depth": 1, "decoder_depth": 1}, **hparams
        ),
        SemanticSegmentationTask(
            model_factory="EncoderDecoderFactory",
            model_args={"backbone": "timm_resnet18", "decoder": "FCNDecoder", "num_classes": 2},
            **hparams,
        ),
    ]
    for task in tasks:
        task._trainer = trainer
        scheduler = task.configure_optimizers()["lr_scheduler"]["scheduler"]
        cosine = scheduler._schedulers[1]
        assert cosine.T_max == 40 - 4, type(task).__name__  # steps, not epochs
