"""Training speed: Prithvi tiny + UPerNet, 6 bands, 224x224 chips, batch 8, on generated GeoTIFFs.

Two measurements per tool, each in a fresh process of the tool's own environment:

* ``e2e``: ``Trainer.fit`` on the tool's generic segmentation datamodule reading the chips (file
  reading, normalisation, the task's loss and training metrics, optimiser step). Steps/s are timed
  between the end of the warm-up steps and the end of the last step, so data loading is included.
* ``model``: the same model on an in-memory batch: forward, cross-entropy, backward, AdamW step.
  Isolates the model's cost from the data pipeline and the task's bookkeeping.

Both at equal precision (``32-true`` and ``bf16-mixed``) and at each tool's default precision.

``model_*_terramind_base``: the model-only step of ``terramind_v1_base`` + UPerNet on the same six
bands (as S2L2A bands), the same necks and batch for both tools.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Case, Measure, Metric, run_worker

BANDS_HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
NUM_CLASSES = 2
NECKS = [
    {"name": "SelectIndices", "indices": [0, 1, 2, 3]},  # prithvi_eo_tiny has 4 blocks
    {"name": "ReshapeTokensToImage"},
    {"name": "LearnedInterpolateToPyramidal"},
]
# TerraMind has no CLS token; its 12 blocks feed UPerNet through every third one.
TERRAMIND_NECKS = [
    {"name": "SelectIndices", "indices": [2, 5, 8, 11]},
    {"name": "ReshapeTokensToImage", "remove_cls_token": False},
    {"name": "LearnedInterpolateToPyramidal"},
]
BACKBONES = ("prithvi_eo_tiny", "terramind_v1_base")
LR = 1e-4
IGNORE_INDEX = 255  # no generated label uses it


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- model and data per tool (run inside the tool's environment) --------------------------------------
def model_args(num_classes: int = NUM_CLASSES, backbone: str = "prithvi_eo_tiny") -> dict[str, Any]:
    """Encoder-decoder arguments, written the same way for both tools."""
    if backbone == "terramind_v1_base":
        return {
            "backbone": backbone,
            "backbone_pretrained": False,
            "backbone_modalities": ["S2L2A"],
            "backbone_bands": {"S2L2A": BANDS_HLS},
            "backbone_merge_method": "mean",
            "necks": [dict(n) for n in TERRAMIND_NECKS],
            "decoder": "UperNetDecoder",
            "num_classes": num_classes,
        }
    if backbone != "prithvi_eo_tiny":
        raise ValueError(f"unknown benchmark backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    return {
        "backbone": "prithvi_eo_tiny",
        "backbone_pretrained": False,
        "backbone_bands": BANDS_HLS,
        "necks": [dict(n) for n in NECKS],
        "decoder": "UperNetDecoder",
        "num_classes": num_classes,
    }


def build_task(tool: str, backbone: str = "prithvi_eo_tiny") -> Any:
    """The tool's own ``SemanticSegmentationTask`` with ``EncoderDecoderFactory``."""
    if tool == "reference":
        from terratorch.tasks import SemanticSegmentationTask

        return SemanticSegmentationTask(
            model_factory="EncoderDecoderFactory",
            model_args=model_args(backbone=backbone),
            loss="ce",
            # The reference's default ignore_index=None crashes its CE loss (torch wants an int).
            ignore_index=IGNORE_INDEX,
            optimizer="AdamW",
            lr=LR,
            plot_on_val=False,
        )
    if tool == "geoft":
        try:
            from geoft.tasks import SemanticSegmentationTask
        except ImportError as err:
            raise RuntimeError(
                f"geoft.tasks.SemanticSegmentationTask is not available yet ({err}); "
                "the geoft side of the training benchmark cannot run"
            ) from err
        return SemanticSegmentationTask(
            model_factory="EncoderDecoderFactory",
            model_args=model_args(backbone=backbone),
            loss="ce",
            ignore_index=IGNORE_INDEX,
            optimizer="AdamW",
            lr=LR,
        )
    raise ValueError(f"unknown tool {tool!r}")


def build_datamodule(tool: str, chips: str, batch_size: int, num_workers: int) -> Any:
    """The tool's own generic non-geo segmentation datamodule over the generated chips."""
    from benchmarks.scenes import ChipSet

    cs = ChipSet(Path(chips))
    common = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "num_classes": NUM_CLASSES,
        "train_data_root": cs.images("train"),
        "train_label_data_root": cs.labels("train"),
        "val_data_root": cs.images("val"),
        "val_label_data_root": cs.labels("val"),
        "img_grep": cs.img_glob,
        "label_grep": cs.label_glob,
        "means": cs.means(len(BANDS_HLS)),
        "stds": cs.stds(len(BANDS_HLS)),
    }
    if tool == "reference":
        from terratorch.datamodules import GenericNonGeoSegmentationDataModule

        return GenericNonGeoSegmentationDataModule(
            test_data_root=cs.images("val"), test_label_data_root=cs.labels("val"), **common
        )
    if tool == "geoft":
        try:
            from geoft.datamodules import GenericNonGeoSegmentationDataModule
        except ImportError as err:
            raise RuntimeError(
                f"geoft.datamodules.GenericNonGeoSegmentationDataModule is not available yet ({err}); "
                "the geoft side of the training benchmark cannot run"
            ) from err
        return GenericNonGeoSegmentationDataModule(**common)
    raise ValueError(f"unknown tool {tool!r}")


# -- worker functions (called through benchmarks.worker) ----------------------------------------------
def train_e2e(
    tool: str,
    chips: str,
    precision: str | None,
    batch_size: int = 8,
    steps: int = 20,
    warmup_steps: int = 3,
    num_workers: int = 2,
) -> dict[str, float]:
    """``Trainer.fit`` for ``warmup_steps + steps`` steps; steps/s over the last ``steps``.

    ``precision=None`` leaves the Trainer's precision at the tool's default.
    """
    from lightning.pytorch import Callback, Trainer

    class StepClock(Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_batch_end(self, *args: Any) -> None:
            self.ends.append(time.perf_counter())

    if warmup_steps < 1:
        raise ValueError("warmup_steps must be >= 1 (the first step's end starts the clock)")
    clock = StepClock()
    task = build_task(tool)
    datamodule = build_datamodule(tool, chips, batch_size, num_workers)
    trainer_args: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_steps": warmup_steps + steps,
        "max_epochs": -1,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": [clock],
    }
    if precision is not None:
        trainer_args["precision"] = precision
    trainer = Trainer(**trainer_args)
    trainer.fit(task, datamodule=datamodule)
    done = len(clock.ends) - warmup_steps
    if done < 1:
        raise RuntimeError(f"{tool}: only {len(clock.ends)} training steps ran")
    elapsed = clock.ends[-1] - clock.ends[warmup_steps - 1]
    return {
        "steps_per_s": done / elapsed,
        "samples_per_s": done * batch_size / elapsed,
        "peak_rss_mb": peak_rss_mb(),
    }


def load_only(
    tool: str, chips: str, batch_size: int = 8, num_workers: int = 0, epochs: int = 2
) -> dict[str, float]:
    """Samples/s of the training loader plus the tool's batch normalisation, no model.

    geoft normalises in its batch transform, the reference in its (torchgeo) ``train_aug``; both
    run on the batch as ``on_after_batch_transfer`` would during ``fit``.
    """
    datamodule = build_datamodule(tool, chips, batch_size, num_workers)
    datamodule.setup("fit")
    if tool == "geoft":
        transform = datamodule.batch_transform("train")
    else:
        transform = datamodule._valid_attribute("train_aug", "aug")
    loader = datamodule.train_dataloader()
    seen = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            batch = transform(batch)
            seen += int(batch["image"].shape[0])
    elapsed = time.perf_counter() - start
    return {"samples_per_s": seen / elapsed, "peak_rss_mb": peak_rss_mb()}


def model_step_fn(
    tool: str,
    precision: str,
    batch_size: int,
    size: int = 224,
    configure: Callable[[Any], None] | None = None,
    backbone: str = "prithvi_eo_tiny",
) -> Callable[[], None]:
    """A closure running one forward/backward/AdamW step of the tool's model on a fixed batch.

    ``configure(model)`` may change the model before the optimiser is built (for lever measurements).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.manual_seed(0)
    model = build_task(tool, backbone).model
    model.train()
    if configure is not None:
        configure(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    x = torch.randn(batch_size, len(BANDS_HLS), size, size)
    y = torch.randint(0, NUM_CLASSES, (batch_size, size, size))
    if precision not in ("32-true", "bf16-mixed"):
        raise ValueError(f"model-only steps support 32-true and bf16-mixed, not {precision!r}")
    use_bf16 = precision == "bf16-mixed"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(x).output
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        optimizer.step()

    return step


def train_model_only(
    tool: str,
    precision: str,
    batch_size: int = 8,
    steps: int = 10,
    warmup_steps: int = 2,
    backbone: str = "prithvi_eo_tiny",
) -> dict[str, float]:
    """Steps/s of the bare model step (no data loading, no task bookkeeping)."""
    step = model_step_fn(tool, precision, batch_size, backbone=backbone)
    for _ in range(warmup_steps):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    return {
        "steps_per_s": steps / elapsed,
        "samples_per_s": steps * batch_size / elapsed,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- benchmark definition (runs in the harness's process) ---------------------------------------------
def data_dir() -> Path:
    """Where generated inputs live: ``$GEOFT_BENCH_DATA`` or a folder in the system temp dir."""
    env = os.environ.get("GEOFT_BENCH_DATA")
    return Path(env) if env else Path(tempfile.gettempdir()) / "geoft-bench-data"


def build(quick: bool, threads: int = 2) -> Benchmark:
    """Cases: data loading alone; end to end and model-only at fp32 and bf16-mixed (quick: fp32 only)."""
    from benchmarks.scenes import make_chips

    batch = 8
    steps, warmup = (3, 1) if quick else (10, 2)
    model_steps = 3 if quick else 6
    tm_batch = 2 if quick else batch
    n_train = batch * (steps + warmup)
    chips = make_chips(data_dir() / f"chips224_n{n_train}", n_train=n_train, n_val=batch, size=224)
    timeout = 1200.0 if quick else 3600.0

    def e2e(precision: str | None) -> dict[str, Measure]:
        return {
            tool: (
                lambda tool=tool: run_worker(
                    tool,
                    "training",
                    "train_e2e",
                    {
                        "tool": tool,
                        "chips": str(chips.root),
                        "precision": precision,
                        "batch_size": batch,
                        "steps": steps,
                        "warmup_steps": warmup,
                    },
                    timeout_s=timeout,
                    threads=threads,
                )
            )
            for tool in ("geoft", "reference")
        }

    def model_only(
        precision: str, backbone: str = "prithvi_eo_tiny", batch_size: int = batch
    ) -> dict[str, Measure]:
        return {
            tool: (
                lambda tool=tool: run_worker(
                    tool,
                    "training",
                    "train_model_only",
                    {
                        "tool": tool,
                        "precision": precision,
                        "batch_size": batch_size,
                        "steps": model_steps,
                        "warmup_steps": 1,
                        "backbone": backbone,
                    },
                    timeout_s=timeout,
                    threads=threads,
                )
            )
            for tool in ("geoft", "reference")
        }

    speed = {
        "steps_per_s": Metric("steps/s", higher_is_better=True),
        "peak_rss_mb": Metric("MiB", higher_is_better=False),
    }

    # Neither tool sets a Trainer precision of its own, so 32-true is also "each at its defaults".
    # If one grows a different default, add a case with precision=None (the Trainer's default).
    def loader() -> dict[str, Measure]:
        return {
            tool: (
                lambda tool=tool: run_worker(
                    tool,
                    "training",
                    "load_only",
                    {"tool": tool, "chips": str(chips.root), "batch_size": batch, "num_workers": 0},
                    timeout_s=timeout,
                    threads=threads,
                )
            )
            for tool in ("geoft", "reference")
        }

    cases = [
        Case(
            "loader_w0",
            loader(),
            {
                "samples_per_s": Metric("samples/s", higher_is_better=True),
                "peak_rss_mb": Metric("MiB", higher_is_better=False),
            },
            note="train loader + batch normalisation, 0 workers, 2 epochs, no model",
        ),
        Case("e2e_fp32", e2e("32-true"), speed, note="Trainer.fit, 32-true (both tools' default)"),
        Case("e2e_bf16", e2e("bf16-mixed"), speed, note="Trainer.fit, bf16-mixed"),
        Case("model_fp32", model_only("32-true"), speed, note="forward+CE+backward+AdamW, fp32"),
        Case("model_bf16", model_only("bf16-mixed"), speed, note="forward+CE+backward+AdamW, bf16 autocast"),
        Case(
            "model_fp32_terramind_base",
            model_only("32-true", "terramind_v1_base", tm_batch),
            speed,
            note=f"terramind_v1_base (S2L2A, 6 bands) + UPerNet, batch {tm_batch}, fp32",
        ),
        Case(
            "model_bf16_terramind_base",
            model_only("bf16-mixed", "terramind_v1_base", tm_batch),
            speed,
            note=f"terramind_v1_base (S2L2A, 6 bands) + UPerNet, batch {tm_batch}, bf16 autocast",
        ),
    ]
    if quick:
        keep = ("loader_w0", "e2e_fp32", "model_fp32", "model_fp32_terramind_base")
        cases = [c for c in cases if c.name in keep]
    return Benchmark("training", cases, repeats=1 if quick else 3, warmup=0)
