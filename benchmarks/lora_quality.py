"""LoRA against full fine-tuning and a frozen encoder on real data: water IoU at the same budget.

The Sen1Floods11 chip (Sentinel-2, 13 bands, 512², water labels) is cut into 64-px tiles: three
quadrants train, the bottom-right quadrant is held out (as ``benchmarks/precision_real.py``). The
model is Prithvi-EO tiny (4 blocks, 256 wide) + UPerNet (64 channels) on bands B3, B8, B11, B12.

No pretrained weights can be downloaded here, so the encoder starts from one of:

* ``mae``: a checkpoint built locally: geoft's ``ReconstructionTask`` (masked autoencoder) trained on
  the *training* tiles' images only (no labels, nothing of the held-out quadrant), saved as
  ``encoder.pt`` and loaded with ``backbone_ckpt_path``, as one would load published weights;
* ``random``: a random initialisation (what adapters are not meant for: a control).

Each mode (``full``, ``lora`` r=16 on ``qkv``/``proj``, ``frozen`` encoder) trains from the same
encoder with the same seed, epochs, optimiser, learning rate and schedule; the test quadrant's water
IoU and mIoU are reported per seed and as the mean.

    .venv/bin/python benchmarks/lora_quality.py [--seeds 0,1] [--epochs 15] [--pretrain_epochs 40]

Set ``GEOFT_REAL_DATA`` if the real data are not in ``../shared/data/real``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import RESULTS_DIR, machine_info  # noqa: E402
from benchmarks.precision_real import (  # noqa: E402
    TILE,
    USED_BANDS,
    quiet_trainer,
    real_data_root,
    sen1floods11_datamodule,
    water_task,
)
from benchmarks.scenes import cut_into_quadrant_tiles  # noqa: E402

MODES = ("full", "lora", "frozen")
BACKBONE = "prithvi_eo_tiny"
LORA = {"method": "LORA", "peft_config_kwargs": {"r": 16, "lora_alpha": 32}}
STEPS_PER_EPOCH = 6  # 48 training tiles, batch 8


def pretrain_encoder(tiles: Path, out: Path, epochs: int, seed: int = 0) -> tuple[Path, float]:
    """Masked-autoencoder training on the training tiles' images; the encoder in the published layout."""
    import lightning

    from geoft.tasks import ReconstructionTask

    lightning.seed_everything(seed, verbose=False)
    task = ReconstructionTask(
        model_args={
            "backbone": BACKBONE,
            "backbone_pretrained": False,
            "backbone_bands": USED_BANDS,
            "backbone_img_size": TILE,
            "mask_ratio": 0.5,
            "decoder_embed_dim": 128,
            "decoder_depth": 2,
        },
        lr=1e-3,
        optimizer="AdamW",
        scheduler="WarmupCosine",
        # the schedule's length in steps, as the fine-tuning runs count theirs
        scheduler_hparams={
            "warmup_iters": min(12, STEPS_PER_EPOCH * epochs - 1),
            "total_iters": STEPS_PER_EPOCH * epochs,
            "interval": "step",
        },
    )
    trainer = quiet_trainer(epochs, "32-true")
    trainer.fit(task, sen1floods11_datamodule(tiles, tiles / "stats"))
    loss = float(trainer.callback_metrics["train/loss_epoch"])
    return task.save_encoder(out), loss


def fine_tune(tiles: Path, mode: str, encoder: Path | None, seed: int, epochs: int) -> dict[str, float]:
    """Train ``mode`` from ``encoder`` (``None``: random init); metrics on the held-out quadrant."""
    import lightning
    import torch

    from geoft.models.peft import parameter_counts

    lightning.seed_everything(seed, verbose=False)
    model_args: dict[str, Any] = {
        "backbone": BACKBONE,
        "backbone_pretrained": False,
        "backbone_bands": USED_BANDS,
        "backbone_img_size": TILE,
    }
    if encoder is not None:
        model_args.update(backbone_ckpt_path=str(encoder), backbone_pretrained_bands=USED_BANDS)
    if mode == "lora":
        model_args["peft_config"] = LORA
    task = water_task(model_args, epochs, freeze_backbone=mode == "frozen")
    trainable, frozen = parameter_counts(task.model)
    datamodule = sen1floods11_datamodule(tiles, tiles / "stats")
    trainer = quiet_trainer(epochs, "32-true")
    start = time.perf_counter()
    trainer.fit(task, datamodule)
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        result = trainer.test(task, datamodule, verbose=False)[0]
    return {
        "water_iou": result["test/IoU_water"],
        "miou": result["test/mIoU"],
        "fit_s": fit_s,
        "steps": float(trainer.global_step),
        "trainable_params": float(trainable),
        "frozen_params": float(frozen),
    }


def _summary(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = ("water_iou", "miou", "fit_s")
    out = {k: statistics.fmean(r[k] for r in runs) for k in keys}
    out.update({f"{k}_min": min(r[k] for r in runs) for k in ("water_iou", "miou")})
    out.update({f"{k}_max": max(r[k] for r in runs) for k in ("water_iou", "miou")})
    out.update({k: runs[0][k] for k in ("steps", "trainable_params", "frozen_params")})
    return out


def _table(summary: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace, mae_loss: float) -> str:
    lines = [
        f"LoRA vs full vs frozen encoder on the real Sen1Floods11 chip: {BACKBONE} + UPerNet (64 ch), "
        f"bands {', '.join(USED_BANDS)}, 64-px tiles, 3 quadrants train / the 4th tests, "
        f"{args.epochs} epochs ({int(next(iter(summary.values()))['full']['steps'])} steps) each, AdamW lr 1e-3 "
        f"WarmupCosine, fp32, seeds {args.seeds}. `mae` = encoder from a masked autoencoder trained locally "
        f"on the training tiles' images ({args.pretrain_epochs} epochs, final loss {mae_loss:.3f}); "
        "`random` = random init. Water IoU / mIoU on the held-out quadrant: mean (min-max over seeds).",
        "",
        "| encoder | mode | water IoU | mIoU | trainable params | frozen params | fit (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for init, modes in summary.items():
        for mode, s in modes.items():
            lines.append(
                f"| {init} | {mode} | {s['water_iou']:.3f} ({s['water_iou_min']:.3f}-{s['water_iou_max']:.3f}) | "
                f"{s['miou']:.3f} ({s['miou_min']:.3f}-{s['miou_max']:.3f}) | {s['trainable_params']:,.0f} | "
                f"{s['frozen_params']:,.0f} | {s['fit_s']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--pretrain_epochs", type=int, default=40)
    parser.add_argument("--inits", default="mae,random", help="encoder starts: mae and/or random")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    source = real_data_root() / "sen1floods11_sample"
    if not source.is_dir():
        print(f"no real data at {source}; set GEOFT_REAL_DATA", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    inits = args.inits.split(",")
    summary: dict[str, dict[str, dict[str, float]]] = {}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    mae_loss = float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        tiles = Path(tmp) / "tiles"
        cut_into_quadrant_tiles(
            source / "Spain_7370579_S2Hand.tif", source / "Spain_7370579_LabelHand.tif", tiles, TILE
        )
        encoders: dict[str, Path | None] = {"random": None}
        if "mae" in inits:
            start = time.perf_counter()
            encoders["mae"], mae_loss = pretrain_encoder(
                tiles, Path(tmp) / "encoder.pt", args.pretrain_epochs
            )
            print(f"mae encoder: {args.pretrain_epochs} epochs, loss {mae_loss:.3f}, "
                  f"{time.perf_counter() - start:.1f}s", flush=True)  # fmt: skip
        for init in inits:
            runs[init] = {mode: [] for mode in MODES}
            for seed in seeds:
                for mode in MODES:
                    result = fine_tune(tiles, mode, encoders[init], seed, args.epochs)
                    runs[init][mode].append(result)
                    print(
                        f"{init:6s} {mode:6s} seed {seed}: water IoU {result['water_iou']:.3f} "
                        f"mIoU {result['miou']:.3f} fit {result['fit_s']:.1f}s",
                        flush=True,
                    )
            summary[init] = {mode: _summary(r) for mode, r in runs[init].items()}
    text = _table(summary, args, mae_loss)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = Path(RESULTS_DIR) / "lora_quality_sen1floods11.json"
    payload = {
        "args": vars(args),
        "machine": machine_info(),
        "mae_loss": mae_loss,
        "summary": summary,
        "runs": runs,
    }
    out.write_text(json.dumps(payload, indent=2))
    out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
