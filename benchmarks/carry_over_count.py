"""Count the reference's example configs that run unchanged through ``geoft fit``.

    PYTHONPATH=. python benchmarks/carry_over_count.py --examples PATH/TO/terratorch/examples [--run]

Reads every YAML under ``examples/confs`` and ``examples/tutorials/**/configs`` of a TerraTorch
checkout (nothing of it is copied here). Each config is translated and checked as ``geoft fit``
does; a config whose datamodule, task, factory, backbone and decoder geoft has is then (``--run``)
fitted for one step with its data swapped for tiny generated data of the same layout (band count,
``img_grep``/``label_grep`` names, split files, class folders, one folder per modality for
``GenericMultiModalDataModule``). Only what cannot work offline or on
2 CPU cores in seconds is overridden, and printed: ``backbone_pretrained: false``, chip size,
batch size 2, one train/val batch, ``num_workers: 0``, CPU, 32-bit precision.
Prints one line per config and the count; ``--json FILE`` writes them too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PIXELWISE = ("GenericNonGeoSegmentationDataModule", "GenericNonGeoPixelwiseRegressionDataModule")


def find_configs(examples: Path) -> list[Path]:
    found = sorted((examples / "confs").rglob("*.yaml"))
    found += sorted(p for p in (examples / "tutorials").rglob("*.yaml") if "configs" in p.parts)
    return found


def _write_tif(path: Path, array: np.ndarray) -> None:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[-1],
        height=array.shape[-2],
        count=array.shape[0],
        dtype=array.dtype,
        crs="EPSG:32633",
        transform=from_origin(0, 0, 30, 30),
    ) as dst:
        dst.write(array)


def _name(grep: str, stem: str) -> str:
    return grep.replace("*", stem, 1).replace("*", "") if "*" in grep else stem + grep


def _crop_size(data_args: dict[str, Any]) -> int:
    sizes = [64]
    for key in ("train_transform", "val_transform", "test_transform"):
        for item in data_args.get(key) or []:
            if isinstance(item, dict):
                args = item.get("init_args") or {}
                sizes += [int(args[k]) for k in ("height", "width") if isinstance(args.get(k), int)]
    return max(sizes)


def _modality_bands(args: dict[str, Any], modality: str) -> int:
    for key in ("output_bands", "dataset_bands", "means"):
        given = (args.get(key) or {}).get(modality)
        if given:
            return len(given)
    return 3


def swap_multimodal_data(args: dict[str, Any], root: Path, ignore: Any) -> str:
    """One folder per modality (``image_grep`` per modality), one label folder, split files of stems."""
    rng = np.random.default_rng(0)
    size = _crop_size(args)
    classes = int(args.get("num_classes") or 2)
    modalities = [str(m) for m in args["modalities"]]
    greps = args.get("image_grep") or {}
    for split in ("train", "val", "test"):
        if f"{split}_data_root" not in args:
            continue
        stems = [f"{split}{i}" for i in range(2)]
        roots = {m: root / split / m for m in modalities}
        for stem in stems:
            for m in modalities:
                image = rng.random((_modality_bands(args, m), size, size), dtype=np.float32)
                _write_tif(roots[m] / _name(str(greps.get(m, "*.tif")), stem), image)
            if f"{split}_label_data_root" in args:
                label = rng.integers(0, classes, (1, size, size)).astype(np.int16)
                if ignore is not None:
                    label[:, :2, :2] = ignore
                _write_tif(root / split / "labels" / _name(str(args.get("label_grep", "*.tif")), stem), label)
        args[f"{split}_data_root"] = {m: str(p) for m, p in roots.items()}
        if f"{split}_label_data_root" in args:
            args[f"{split}_label_data_root"] = str(root / split / "labels")
        if f"{split}_split" in args:
            split_file = root / f"{split}.txt"
            split_file.write_text("\n".join(stems) + "\n")
            args[f"{split}_split"] = str(split_file)
    args.update(batch_size=2, num_workers=0)
    bands = {m: _modality_bands(args, m) for m in modalities}
    return f"GenericMultiModalDataModule {bands} bands {size}px"


def swap_data(config: dict[str, Any], root: Path) -> str:
    """Point the config's data at tiny generated data of its layout; returns what was generated."""
    data = config["data"]
    args = data.setdefault("init_args", {})
    kind = str(data["class_path"]).rpartition(".")[2]
    if kind == "GenericMultiModalDataModule":
        return swap_multimodal_data(args, root, (config["model"].get("init_args") or {}).get("ignore_index"))
    bands = len(args.get("dataset_bands") or []) or 6
    frames = 3 if args.get("expand_temporal_dimension") else 1
    size = _crop_size(args)
    rng = np.random.default_rng(0)
    classes = int(args.get("num_classes") or 2)
    ignore = (config["model"].get("init_args") or {}).get("ignore_index")
    for split in ("train", "val", "test"):
        if f"{split}_data_root" not in args:
            continue
        image_root = root / split / "images"
        label_root = root / split / "labels" if f"{split}_label_data_root" in args else image_root
        n = classes if kind == "GenericNonGeoClassificationDataModule" else 2
        stems = [f"{split}{i}" for i in range(n)]
        for i, stem in enumerate(stems):
            image = rng.random((bands * frames, size, size), dtype=np.float32)
            if kind == "GenericNonGeoClassificationDataModule":
                _write_tif(image_root / f"class{i % classes}" / f"{stem}.tif", image)
                continue
            if kind == PIXELWISE[0]:
                label = rng.integers(0, classes, (1, size, size)).astype(np.int16)
                if ignore is not None:
                    label[:, :2, :2] = ignore
            else:
                label = rng.random((1, size, size), dtype=np.float32)
            _write_tif(image_root / _name(str(args.get("img_grep", "*.tif")), stem), image)
            _write_tif(label_root / _name(str(args.get("label_grep", "*.tif")), stem), label)
        args[f"{split}_data_root"] = str(image_root)
        if f"{split}_label_data_root" in args:
            args[f"{split}_label_data_root"] = str(label_root)
        if f"{split}_split" in args:
            split_file = root / f"{split}.txt"
            split_file.write_text("\n".join(stems) + "\n")
            args[f"{split}_split"] = str(split_file)
    args.update(batch_size=2, num_workers=0)
    return f"{kind} {bands * frames} bands {size}px"


def shrink_for_cpu(config: dict[str, Any], out: Path) -> None:
    model_args = (config["model"].setdefault("init_args", {})).setdefault("model_args", {})
    for key in ("backbone_pretrained", "pretrained"):
        if key in model_args:
            model_args[key] = False
    trainer = config.setdefault("trainer", {})
    trainer.update(
        accelerator="cpu",
        devices=1,
        precision="32-true",
        max_epochs=1,
        max_steps=1,
        limit_train_batches=1,
        limit_val_batches=1,
        default_root_dir=str(out / "runs"),
    )
    for callback in trainer.get("callbacks") or []:
        if isinstance(callback, dict) and "dirpath" in (callback.get("init_args") or {}):
            callback["init_args"]["dirpath"] = str(out / "ckpt")
    logger = trainer.get("logger")
    if isinstance(logger, dict) and "save_dir" in (logger.get("init_args") or {}):
        logger["init_args"]["save_dir"] = str(out / "logs")


def why_not(config: Any) -> str | None:
    """Why geoft cannot run this config, or None when it has every part."""
    from geoft.config.checks import check_config, check_lightning_cli_shape
    from geoft.config.compat import translate
    from geoft.errors import GeoftError
    from geoft.registry import BACKBONE_REGISTRY, DECODER_REGISTRY, MODEL_FACTORY_REGISTRY

    if not isinstance(config, dict):
        return "not a mapping of LightningCLI sections"
    try:
        check_lightning_cli_shape(config, "config")
        translated = translate(config, lambda _m: None)
        check_config(translated)
    except GeoftError as err:
        return str(err).splitlines()[0]
    model_args = (translated["model"].get("init_args") or {}).get("model_args") or {}
    factory = (translated["model"].get("init_args") or {}).get("model_factory")
    if factory and factory not in MODEL_FACTORY_REGISTRY:
        return f"model_factory {factory} is not in geoft"
    backbone = model_args.get("backbone")
    if factory in (None, "EncoderDecoderFactory") and isinstance(backbone, str):
        if backbone not in BACKBONE_REGISTRY and f"timm_{backbone}" not in BACKBONE_REGISTRY:
            return f"backbone {backbone} is not in geoft"
    decoder = model_args.get("decoder")
    if isinstance(decoder, str) and decoder not in DECODER_REGISTRY:
        return f"decoder {decoder} is not in geoft"
    return None


class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps a copy, to report geoft's first error line."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def first_error(self) -> str | None:
        lines = self.copy.getvalue().splitlines()
        return next(
            (line.removeprefix("geoft: error: ") for line in lines if line.startswith("geoft: error:")), None
        )


def run_one(path: Path, run: bool) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        return {"config": str(path), "runs": False, "why": f"not valid YAML: {str(err).splitlines()[0]}"}
    reason = why_not(config)
    if reason is not None or not run:
        return {"config": str(path), "runs": False if reason else None, "why": reason or "runnable (not run)"}
    from geoft.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        layout = swap_data(config, Path(tmp) / "data")
        shrink_for_cpu(config, Path(tmp))
        file = Path(tmp) / "config.yaml"
        file.write_text(yaml.safe_dump(config, sort_keys=False))
        errors = _Tee(sys.stderr)
        try:
            with contextlib.redirect_stderr(errors):
                code = main(["fit", "-c", str(file)])
        except Exception as err:  # the count reports every failure instead of stopping
            traceback.print_exc()
            return {"config": str(path), "runs": False, "why": f"{type(err).__name__}: {err}", "data": layout}
    return {
        "config": str(path),
        "runs": code == 0,
        "why": "" if code == 0 else errors.first_error() or f"exit {code}",
        "data": layout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=Path, required=True, help="a TerraTorch checkout's examples folder"
    )
    parser.add_argument("--run", action="store_true", help="fit each runnable config for one step")
    parser.add_argument("--only", default=None, help="regex on the config path")
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()
    rows = []
    for path in find_configs(opts.examples):
        if opts.only and not re.search(opts.only, str(path)):
            continue
        row = run_one(path, opts.run)
        rows.append(row)
        print(
            f"{'RUNS' if row['runs'] else 'no  ' if row['runs'] is False else '?   '} "
            f"{path.relative_to(opts.examples)}: {row['why']}",
            flush=True,
        )
    print(f"{sum(bool(r['runs']) for r in rows)} of {len(rows)} run unchanged")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
