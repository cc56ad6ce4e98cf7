"""The start of ``fit`` on uncached data: the full data check plus the band statistics, on geoft alone.

``python benchmarks/data_check_statistics.py [--chips 2000] [--size 32] [--rounds 3]`` writes generated
6-band int16 chips with masks (``benchmarks/scenes.py``; ``--chips`` training pairs and 20 validation
pairs), then, each round with the caches removed, builds a ``GenericNonGeoSegmentationDataModule``
without means/stds (``data_check: full``) and times ``setup("fit")``: every file checked, the training
statistics computed. It prints the median time and how many times raster files were opened, as JSON.
The script only uses the datamodule's public arguments, so the same file measures an older commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scenes import make_chips  # noqa: E402


def _clear_caches(root: Path, cache: Path) -> None:
    for folder in root.rglob(".geoft_cache"):
        shutil.rmtree(folder)
    shutil.rmtree(cache, ignore_errors=True)


def setup_fit(root: Path, cache: Path) -> dict[str, Any]:
    """One cold ``setup("fit")``: seconds, raster opens, and the statistics' first mean."""
    import rasterio

    from geoft.datamodules import GenericNonGeoSegmentationDataModule

    opens = 0
    real_open = rasterio.open

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal opens
        opens += 1
        return real_open(*args, **kwargs)

    dm = GenericNonGeoSegmentationDataModule(
        num_classes=2,
        batch_size=8,
        img_grep="*_img.tif",
        label_grep="*_mask.tif",
        train_data_root=str(root / "train/images"),
        train_label_data_root=str(root / "train/labels"),
        val_data_root=str(root / "val/images"),
        val_label_data_root=str(root / "val/labels"),
        stats_cache_dir=str(cache),
        data_check="full",
    )
    rasterio.open = counted
    try:
        start = time.perf_counter()
        dm.setup("fit")
        seconds = time.perf_counter() - start
    finally:
        rasterio.open = real_open
    return {"seconds": seconds, "raster_opens": opens, "mean_0": dm.means[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "geoft-bench-check-stats")
    args = parser.parse_args(argv)
    root = make_chips(args.data / f"{args.chips}x{args.size}", args.chips, n_val=20, size=args.size).root
    cache = args.data / "cache"
    rounds = []
    for _ in range(args.rounds):
        _clear_caches(root, cache)
        rounds.append(setup_fit(root, cache))
    result = {
        "chips": args.chips,
        "size": args.size,
        "cpus": os.cpu_count(),
        "median_seconds": round(statistics.median(r["seconds"] for r in rounds), 3),
        "rounds": rounds,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
