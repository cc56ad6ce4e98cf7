"""Before Start: memory and time per epoch of a config, measured on a real batch of the user's data.

One training step (forward, loss, backward, optimizer step) runs on a full batch from the config's own
datamodule, on the chosen accelerator and precision, after one warm-up step; a forward pass in eval mode
stands for a validation step. The run happens in a child process (``python -m geoft.app.cost_estimate``),
so that its peak memory is its own and the web server's memory is untouched: on a GPU the allocator's
peak, on the CPU the child's peak resident memory (model, optimizer state, activations and the batch).
"""

from __future__ import annotations

import contextlib
import copy
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from geoft.errors import ConfigError, GeoftError

TIMED_STEPS = 2
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class CostEstimate:
    """Measured step costs and what they mean for one epoch."""

    accelerator: str
    precision: str
    batch_size: int
    train_step_s: float
    val_step_s: float
    train_steps: int
    val_steps: int
    peak_memory_mb: float
    memory_kind: str  # "GPU allocator peak" or "process peak RSS"

    @property
    def epoch_s(self) -> float:
        return self.train_steps * self.train_step_s + self.val_steps * self.val_step_s

    def summary(self) -> str:
        minutes = self.epoch_s / 60
        return (
            f"about {minutes:.1f} min per epoch on {self.accelerator} ({self.precision}): "
            f"{self.train_steps} training steps of {self.train_step_s:.2f} s and {self.val_steps} validation "
            f"steps of {self.val_step_s:.2f} s at batch size {self.batch_size}; "
            f"memory {self.peak_memory_mb:.0f} MB ({self.memory_kind})"
        )


def with_training_choices(
    config: dict[str, Any], accelerator: str, max_epochs: int, batch_size: int, precision: str
) -> dict[str, Any]:
    """A copy of ``config`` with the Train page's device, epochs, batch size and precision."""
    chosen = copy.deepcopy(config)
    chosen.setdefault("trainer", {}).update(
        accelerator=accelerator, max_epochs=max_epochs, precision=precision
    )
    chosen.setdefault("data", {}).setdefault("init_args", {})["batch_size"] = batch_size
    return chosen


def _datamodule(config: dict[str, Any]) -> Any:
    from lightning.pytorch import LightningDataModule

    from geoft.config import instantiate

    data = config.get("data") or {}
    if not data.get("class_path"):
        raise ConfigError("the config has no data section", hint="choose the data on the Data page first")
    init = {**(data.get("init_args") or {}), "num_workers": 0}
    datamodule = instantiate({**data, "init_args": init}, LightningDataModule, "data")
    datamodule.setup("fit")
    return datamodule


def _optimizer(task: Any) -> Any:
    from geoft.tasks.optimizers import build_optimizer, parameter_groups

    hp = task.hparams
    groups = parameter_groups(task.named_parameters(), hp.get("lr_overrides"))
    return build_optimizer(
        hp.get("optimizer") or "Adam", groups, hp.get("lr", 1e-3), hp.get("optimizer_hparams")
    )


def _autocast(precision: str, device: Any) -> Any:
    """A context factory running the step at ``precision`` as Lightning's mixed precision does."""
    import torch

    if precision in ("32", "32-true", "64", "64-true"):
        return contextlib.nullcontext
    dtypes = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
    if precision not in dtypes:
        raise ConfigError(
            f"the estimate runs at 32-true, bf16-mixed or 16-mixed, not {precision!r}",
            hint="estimate at the nearest of these",
        )
    return lambda: torch.autocast(device.type, dtype=dtypes[precision])


def _batch_to(batch: Any, device: Any) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _batch_to(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [_batch_to(v, device) for v in batch]
    return batch


def measure(config: dict[str, Any]) -> CostEstimate:
    """Run the measurement in this process (the child's work; call :func:`estimate` from the app)."""
    import torch

    from geoft.app.model_check import build_task

    trainer_args = config.get("trainer") or {}
    accelerator = str(trainer_args.get("accelerator", "cpu"))
    precision = str(trainer_args.get("precision", "32-true"))
    device = torch.device("cuda" if accelerator in ("cuda", "gpu") else "cpu")
    datamodule = _datamodule(config)
    task = build_task(config).to(device)
    optimizer = _optimizer(task)
    autocast = _autocast(precision, device)
    loader = datamodule.train_dataloader()
    batch = datamodule.on_after_batch_transfer(_batch_to(next(iter(loader)), device), 0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def train_step() -> None:
        with autocast():
            loss = task.training_step(batch, 0)
        loss = loss["loss"] if isinstance(loss, dict) else loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    task.train()
    task.log = lambda *args, **kwargs: None  # no trainer to log to
    task.log_dict = lambda *args, **kwargs: None
    train_step()  # warm-up: allocator, kernels, lazy modules
    times = []
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    task.eval()
    with torch.no_grad(), autocast():
        start = time.perf_counter()
        task(batch["image"])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        val_s = time.perf_counter() - start
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "GPU allocator peak"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    batch_size = int(
        getattr(datamodule, "batch_size", None) or (config["data"].get("init_args") or {})["batch_size"]
    )
    val_loader = datamodule.val_dataloader() if getattr(datamodule, "val_dataset", None) is not None else []
    return CostEstimate(
        accelerator=device.type,
        precision=precision,
        batch_size=batch_size,
        train_step_s=sorted(times)[len(times) // 2],
        val_step_s=val_s,
        train_steps=len(loader),
        val_steps=len(val_loader) if val_loader else 0,
        peak_memory_mb=round(peak, 1),
        memory_kind=kind,
    )


def estimate(config: dict[str, Any], timeout_s: float = DEFAULT_TIMEOUT_S) -> CostEstimate:
    """Measure ``config`` in a child process; a failure there is a ConfigError with its message."""
    import torch

    _autocast(str((config.get("trainer") or {}).get("precision", "32-true")), torch.device("cpu"))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "geoft.app.cost_estimate"],
            input=json.dumps(config),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise ConfigError(
            f"the estimate took longer than {timeout_s:.0f} s", hint="try a smaller batch or model first"
        ) from err
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        marker = "geoft: error: "
        if marker in done.stderr:
            message = done.stderr.rsplit(marker, 1)[1].strip()
        else:
            message = (done.stderr.strip().splitlines() or ["the measuring process stopped"])[-1]
        raise ConfigError(f"could not measure the config: {message}")
    values = json.loads(lines[-1])
    return CostEstimate(**values)


def _main() -> int:
    config = json.loads(sys.stdin.read())
    try:
        result = measure(config)
    except GeoftError as err:
        print(f"geoft: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result)))
    return 0


__all__ = ["CostEstimate", "estimate", "measure", "with_training_choices"]


if __name__ == "__main__":
    sys.exit(_main())
