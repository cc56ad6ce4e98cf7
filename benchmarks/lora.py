"""LoRA against full fine-tuning and a frozen encoder: train-step time, peak memory, trainable parameters.

Each mode runs in a fresh geoft process (peak memory is the process's own), the modes alternate over
the rounds, and the table reports medians. Same model (``prithvi_eo_v2_300`` + UPerNet by default),
same batch, same precision (fp32 unless ``--precision bf16``).

    .venv/bin/python -m benchmarks.lora                          # prithvi_eo_v2_300, 224², batch 2, 3 rounds
    .venv/bin/python -m benchmarks.lora --backbone prithvi_eo_tiny --rounds 1 --steps 2   # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.harness import RESULTS_DIR, machine_info, run_worker

MODES = ("full", "lora", "frozen")
LORA = {"method": "LORA", "peft_config_kwargs": {"r": 16, "lora_alpha": 32}}
BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def train_step(
    mode: str, backbone: str, size: int, batch: int, steps: int, precision: str
) -> dict[str, float]:
    """Worker: ``steps`` AdamW steps of ``mode`` after one warm-up step; seconds per step and peak RSS."""
    import resource

    import torch

    from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
    from geoft.models.peft import parameter_counts

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone=backbone,
        backbone_bands=BANDS,
        backbone_num_frames=1,
        decoder="UperNetDecoder",
        num_classes=2,
        peft_config=LORA if mode == "lora" else None,
    )
    if mode == "frozen":
        model.freeze_encoder()
    trainable, frozen = parameter_counts(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch, len(BANDS), size, size)
    y = torch.randint(0, 2, (batch, size, size))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> None:
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x).output.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator, optimizer state
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "step_s": statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "trainable_params": float(trainable),
        "frozen_params": float(frozen),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="prithvi_eo_v2_300")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args(argv)
    samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            work = {
                "mode": mode,
                "backbone": args.backbone,
                "size": args.size,
                "batch": args.batch,
                "steps": args.steps,
                "precision": args.precision,
            }
            samples[mode].append(run_worker("geoft", "lora", "train_step", work, threads=args.threads))
    table = {
        mode: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for mode, runs in samples.items()
    }
    full = table["full"]
    lines = [
        f"LoRA vs full fine-tuning: {args.backbone} + UperNet, {args.size}², batch {args.batch}, {args.precision}, "
        f"median of {args.rounds} rounds x {args.steps} steps, {args.threads} threads",
        "",
        "| mode | step (s) | vs full | peak RSS (MiB) | vs full | trainable params | frozen params |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, row in table.items():
        lines.append(
            f"| {mode} | {row['step_s']:.2f} | {row['step_s'] / full['step_s']:.2f}x | {row['peak_rss_mb']:.0f} | "
            f"{row['peak_rss_mb'] / full['peak_rss_mb']:.2f}x | {row['trainable_params']:,.0f} | "
            f"{row['frozen_params']:,.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = Path(RESULTS_DIR) / f"lora_{args.backbone}_{args.precision}.json"
    out.write_text(json.dumps({"args": vars(args), "machine": machine_info(), "table": table}, indent=2))
    (out.with_suffix(".md")).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
