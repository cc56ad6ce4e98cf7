"""``geoft embed``: one embedding per chip of a folder, or per tile of a GeoTIFF scene.

::

    geoft embed -c config.yaml [--ckpt_path X] --input FOLDER|SCENE.tif --output embeddings.parquet|.npz
                [--pooling mean|max|cls] [--layer -1] [--tile N] [--stride N] [--bands 1,2,3] [--batch_size 8]

The config is a training config: its ``model`` section builds the task whose backbone embeds (the
checkpoint's weights when ``--ckpt_path`` is given), its ``data`` section gives the bands, scaling and
``means``/``stds`` (else the ones stored in the checkpoint).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geoft.embeddings import FORMATS, POOLINGS, Embedder, EmbeddingTable, encoder_of, write_embeddings
from geoft.errors import ConfigError, DataError

SCENE_SUFFIXES = (".tif", ".tiff", ".vrt")


def _folder_batches(folder: Path, data: Mapping[str, Any], batch_size: int) -> Iterator[dict[str, Any]]:
    from torch.utils.data import DataLoader

    from geoft.datasets.classification import GenericNonGeoClassificationDataset
    from geoft.datasets.samples import collate_samples

    dataset = GenericNonGeoClassificationDataset(
        data_root=folder,
        num_classes=1,
        image_grep=data.get("img_grep", "*"),
        dataset_bands=data.get("dataset_bands"),
        output_bands=data.get("output_bands"),
        constant_scale=float(data.get("constant_scale", 1.0)),
        no_data_replace=data.get("no_data_replace"),
        chip_size=data.get("chip_size"),
        with_labels=False,
        name="embed",
    )
    yield from DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples)


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets covering ``length`` (the last tile ends at the edge)."""
    if length < tile:
        raise DataError(f"the scene ({length} px) is smaller than one tile ({tile} px)", hint="lower --tile")
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def _scene_batches(
    scene: Path, data: Mapping[str, Any], bands: list[int] | None, tile: int, stride: int, batch_size: int
) -> Iterator[dict[str, Any]]:
    import rasterio
    from rasterio.windows import Window

    scale = float(data.get("constant_scale", 1.0))
    fill = data.get("no_data_replace")
    fill = 0.0 if fill is None else float(fill)  # as predict-scene: the encoder must not see NaN
    with rasterio.open(scene) as src:
        indexes = bands or list(range(1, src.count + 1))
        windows = [
            Window(col, row, tile, tile)
            for row in tile_starts(src.height, tile, stride)
            for col in tile_starts(src.width, tile, stride)
        ]
        for first in range(0, len(windows), batch_size):
            chunk = windows[first : first + batch_size]
            images, names, transforms = [], [], []
            for window in chunk:
                array = src.read(indexes, window=window, masked=True).astype(np.float32)
                array = array.filled(fill) * scale
                images.append(torch.from_numpy(np.ascontiguousarray(array)))
                names.append(f"{scene.name}:{int(window.row_off)}:{int(window.col_off)}")
                transforms.append(tuple(src.window_transform(window))[:6])
            yield {
                "image": torch.stack(images),
                "filename": names,
                "transform": transforms,
                "crs": [src.crs.to_string() if src.crs else None] * len(chunk),
            }


def embed_batches(
    embedder: Embedder, normalise: Any, batches: Iterable[dict[str, Any]], device: str = "cpu"
) -> EmbeddingTable:
    """Embed each batch (``image``, ``filename``, ``transform``, ``crs``) after ``normalise.normalize``."""
    table = EmbeddingTable()
    for batch in batches:
        image = normalise.normalize(batch["image"].float()).to(device)
        vectors = embedder(image)
        table.add(vectors, batch["filename"], batch["transform"], batch["crs"], tuple(image.shape[-2:]))
    return table


def embed_folder(
    task: torch.nn.Module,
    folder: str | Path,
    data: Mapping[str, Any],
    means: Any,
    stds: Any,
    pooling: str = "mean",
    layer: int = -1,
    batch_size: int = 8,
    device: str = "cpu",
) -> EmbeddingTable:
    """One embedding per chip under ``folder`` from ``task``'s backbone, chips read as ``data``
    (a datamodule's ``init_args``: ``img_grep``, bands, scaling) and normalised by ``means``/``stds``."""
    from geoft.datamodules.transforms import BatchTransform

    embedder = Embedder(encoder_of(task), pooling, layer).to(device).eval()
    batches = _folder_batches(Path(folder), data, batch_size)
    return embed_batches(embedder, BatchTransform(means, stds), batches, device)


def embed_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="geoft embed", description="Embed every chip of a folder or tile of a scene."
    )
    parser.add_argument("-c", "--config", action="append", default=[], help="training config (repeatable)")
    parser.add_argument(
        "--ckpt_path", default=None, help="trained checkpoint (default: the config's weights)"
    )
    parser.add_argument("--input", required=True, help="folder of chips, or a GeoTIFF scene")
    parser.add_argument("--output", required=True, help="embeddings.parquet (GeoParquet) or embeddings.npz")
    parser.add_argument("--format", choices=FORMATS, default=None, help="default: from the output's suffix")
    parser.add_argument("--pooling", choices=POOLINGS, default="mean")
    parser.add_argument("--layer", type=int, default=-1, help="which backbone output (default: the last)")
    parser.add_argument(
        "--tile", type=int, default=None, help="scene tile size (default: the backbone's img_size)"
    )
    parser.add_argument("--stride", type=int, default=None, help="scene tile stride (default: the tile size)")
    parser.add_argument(
        "--bands", default=None, help="scene: 1-based band indexes, e.g. 2,3,4,8 (default: all)"
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    opts = parser.parse_args(args)
    from geoft.config import load_configs
    from geoft.datamodules.transforms import BatchTransform
    from geoft.runs.restore import build_task, load_checkpoint, normalisation, task_from_checkpoint

    config = load_configs(opts.config, lambda message: print(f"geoft: {message}", file=sys.stderr))
    ckpt = load_checkpoint(opts.ckpt_path) if opts.ckpt_path else None
    task = (
        task_from_checkpoint(ckpt, config, opts.ckpt_path)
        if ckpt is not None
        else build_task(config["model"])
    )
    stats = normalisation(config, ckpt or {})
    means, stds = stats.means, stats.stds
    normalise = BatchTransform(means, stds)
    embedder = Embedder(encoder_of(task), opts.pooling, opts.layer).to(opts.device).eval()
    data = (config.get("data") or {}).get("init_args") or {}
    source = Path(opts.input)
    if source.is_dir():
        batches = _folder_batches(source, data, opts.batch_size)
    elif source.is_file() and source.suffix.lower() in SCENE_SUFFIXES:
        img_size = getattr(embedder.encoder, "img_size", None)
        tile = opts.tile or (int(img_size[0]) if isinstance(img_size, (tuple, list)) else 224)
        bands = [int(b) for b in opts.bands.split(",")] if opts.bands else None
        batches = _scene_batches(source, data, bands, tile, opts.stride or tile, opts.batch_size)
    else:
        raise ConfigError(f"--input {source} is neither a folder of chips nor a GeoTIFF scene")
    table = embed_batches(embedder, normalise, batches, opts.device)
    path = write_embeddings(table, opts.output, opts.format)
    print(f"wrote {len(table)} embeddings of {table.vectors[0].shape[0]} dims to {path}")
    return 0


__all__ = ["embed_batches", "embed_command", "embed_folder", "tile_starts"]
