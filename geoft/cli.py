"""The ``geoft`` command line.

::

    geoft fit|validate|test|predict -c config.yaml [--ckpt_path X] [--run_name NAME | --run_dir DIR]
                                   [--predict_output_dir DIR]
    geoft compute_statistics -c config.yaml [--split train] [--max_samples N] [--no_cache]
    geoft validate-data -c config.yaml [--no_pixels]
    geoft demo-data OUT_DIR [--size 64] [--n_train 64] [--n_val 16] [--n_test 16] [--seed 0] [--overwrite]
    geoft export -c config.yaml --ckpt_path X [--format onnx|torchscript|pt2] -o model.onnx [--input_shape ...]
    geoft predict-scene -c config.yaml --ckpt_path X --input scene.tif --output pred.tif [--probabilities p.tif] [--uncertainty entropy]
    geoft predict-scene -c config.yaml --ckpt_path X --input S2=s2.tif --input S1=s1.tif --output pred.tif [--grid S1]
    geoft sweep -c config.yaml --space space.yaml --trials N [--study_name S] [--storage URL]

Training commands run Lightning's CLI (see :mod:`geoft.lightning_cli`). Configs in TerraTorch's
shape work (see :mod:`geoft.config`). A :class:`~geoft.errors.GeoftError` anywhere prints
its message (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from geoft.errors import GeoftError, find_geoft_error

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
ALIASES = {
    "compute-statistics": "compute_statistics",
    "validate_data": "validate-data",
    "demo_data": "demo-data",
    "predict_scene": "predict-scene",
}


def _notice(message: str) -> None:
    print(f"geoft: {message}", file=sys.stderr)


def _usage() -> str:
    from geoft import __version__

    return (
        f"geoft {__version__}: fine-tune geospatial foundation models.\n\n"
        "commands:\n"
        "  fit|validate|test|predict -c CONFIG   train / evaluate / predict (Lightning CLI; --help for options)\n"
        "  compute_statistics -c CONFIG          per-band means and stds of the training data\n"
        "  validate-data -c CONFIG               check every file of the dataset, report all problems\n"
        "  demo-data OUT_DIR                     write a small synthetic GeoTIFF segmentation dataset\n"
        "  label-chips --scene S.tif --labels L.gpkg --classes a,b --out DIR\n"
        "                                        training chips from label shapes drawn on a scene\n"
        "  export -c CONFIG --ckpt_path X -o F   export the trained model to ONNX / TorchScript / torch.export\n"
        "  predict-scene -c CONFIG --ckpt_path X --input IN.tif --output OUT.tif\n"
        "                                        predict a GeoTIFF of any size in bounded memory\n"
        "  sweep -c CONFIG --space S.yaml --trials N   search hyperparameters with Optuna (docs/sweeps.md)\n"
        "  embed -c CONFIG --input DIR|SCENE.tif --output E.parquet|E.npz   one embedding per chip or tile\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command = ALIASES.get(args[0], args[0])
    handlers: dict[str, Callable[[list[str]], int]] = {
        "compute_statistics": _compute_statistics,
        "validate-data": _validate_data,
        "demo-data": _demo_data,
        "label-chips": _label_chips,
        "export": _export,
        "predict-scene": _predict_scene,
        "embed": _embed,
        "sweep": _sweep,
    }
    try:
        if command in TRAINER_COMMANDS:
            return _trainer_command(args)
        if command in handlers:
            return handlers[command](args[1:])
        print(f"geoft: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse / jsonargparse errors and --help
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except Exception as err:
        found = find_geoft_error(err) or _storage_error(err)
        if found is None:
            raise
        print(f"geoft: error: {found}", file=sys.stderr)
        return 2


def _storage_error(err: BaseException) -> GeoftError | None:
    """A full disk or unwritable folder hit by code that does not say so itself (GDAL...).

    Training commands name their run folder themselves (:class:`~geoft.lightning_cli.GeoftCLI`).
    """
    from geoft.storage import describe, find_os_error

    os_err = find_os_error(err)
    if os_err is None:
        return None
    return describe(os_err, os_err.filename or os.getcwd(), "to")


# -- fit / validate / test / predict ---------------------------------------------------------------


def _trainer_command(args: list[str]) -> int:
    from geoft.config.loading import rewrite_config_args

    translated = rewrite_config_args(args, _notice)
    from geoft.lightning_cli import GeoftCLI

    with warnings.catch_warnings():
        # We pass the rewritten argv explicitly; Lightning warns when sys.argv is non-empty too.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = GeoftCLI(args=translated)
    if cli.run_dir is not None:
        _notice(f"run folder: {cli.run_dir}")
    return 0


# -- helpers shared by the small commands -----------------------------------------------------------


def _config_from(paths: list[str]) -> dict[str, Any]:
    from geoft.config import load_configs

    return load_configs(paths, _notice)


def _parser(prog: str, description: str, config: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"geoft {prog}", description=description)
    if config:
        parser.add_argument("-c", "--config", action="append", default=[], help="config file (repeatable)")
    return parser


# -- compute_statistics -----------------------------------------------------------------------------


def _compute_statistics(args: list[str]) -> int:
    parser = _parser("compute_statistics", "Per-band statistics of a datamodule's split (printed as YAML).")
    parser.add_argument("--split", default="train", choices=["train", "val", "test", "predict"])
    parser.add_argument("--max_samples", type=int, default=None, help="read at most this many samples")
    parser.add_argument("--no_cache", action="store_true", help="recompute even if cached")
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    opts = parser.parse_args(args)
    config = _config_from(opts.config)
    from geoft.datasets.statistics import datamodule_statistics

    stats = datamodule_statistics(
        config, split=opts.split, max_samples=opts.max_samples, use_cache=not opts.no_cache
    )
    data = stats.to_dict()
    if opts.json:
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print("# paste means/stds into data.init_args of your config")
        print(yaml.safe_dump(data, sort_keys=False))
    return 0


# -- validate-data ----------------------------------------------------------------------------------


def _validate_data(args: list[str]) -> int:
    parser = _parser("validate-data", "Check a dataset and report every problem at once.")
    parser.add_argument("--split", action="append", default=None, help="only this split (repeatable)")
    parser.add_argument("--no_pixels", action="store_true", help="check files and headers only (faster)")
    opts = parser.parse_args(args)
    config = _config_from(opts.config)
    from geoft.datasets.validation import format_problems, validate_dataset

    problems = validate_dataset(config, splits=opts.split, read_pixels=not opts.no_pixels)
    print(format_problems(problems))
    return 1 if any(p.severity == "error" for p in problems) else 0


# -- demo-data --------------------------------------------------------------------------------------


def _demo_data(args: list[str]) -> int:
    parser = _parser("demo-data", "Write a small synthetic GeoTIFF segmentation dataset.", config=False)
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n_train", type=int, default=64)
    parser.add_argument("--n_val", type=int, default=16)
    parser.add_argument("--n_test", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    opts = parser.parse_args(args)
    from geoft.datasets.demo import generate_demo_dataset

    info = generate_demo_dataset(
        opts.out_dir,
        n_train=opts.n_train,
        n_val=opts.n_val,
        n_test=opts.n_test,
        size=opts.size,
        seed=opts.seed,
        overwrite=opts.overwrite,
    )
    print(f"wrote {sum(info.counts.values())} samples ({info.counts}) to {info.root}")
    print(f"classes: {', '.join(info.class_names)}; bands: {', '.join(info.bands)}")
    return 0


def _label_chips(args: list[str]) -> int:
    parser = _parser(
        "label-chips",
        "Cut a scene into training chips where drawn label shapes lie (unlabelled pixels get ignore_index).",
        config=False,
    )
    parser.add_argument("--scene", required=True, help="the GeoTIFF the shapes were drawn on")
    parser.add_argument("--labels", required=True, help="GeoPackage/GeoJSON with a 'class' column")
    parser.add_argument("--classes", required=True, help="class names in index order, comma-separated")
    parser.add_argument("--out", required=True, help="folder for images/ and labels/")
    parser.add_argument("--chip_size", type=int, default=128)
    parser.add_argument("--ignore_index", type=int, default=-1)
    opts = parser.parse_args(args)
    from geoft.datasets.drawn_labels import write_label_chips

    classes = [c.strip() for c in opts.classes.split(",") if c.strip()]
    chips = write_label_chips(opts.scene, opts.labels, classes, opts.out, opts.chip_size, opts.ignore_index)
    counts = ", ".join(f"{name} {n}" for name, n in chips.labelled_pixels.items())
    print(f"wrote {chips.chips} chips to {chips.images} and {chips.labels}; labelled pixels: {counts}")
    return 0


# -- export -----------------------------------------------------------------------------------------


def _export(args: list[str]) -> int:
    parser = _parser("export", "Export a trained model (encoder, decoder and head) for deployment.")
    parser.add_argument("--ckpt_path", required=True, help="Lightning checkpoint to export")
    parser.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "pt2"])
    parser.add_argument("-o", "--output", required=True, help="file to write")
    parser.add_argument(
        "--input_shape",
        default=None,
        help="example input B,C,H,W or B,C,T,H,W (default: from the model and tiled_inference_parameters)",
    )
    parser.add_argument("--static_hw", action="store_true", help="fix height/width to the example's")
    parser.add_argument("--no_verify", action="store_true", help="skip comparing the file with PyTorch")
    opts = parser.parse_args(args)
    from geoft.export_cli import run_export

    return run_export(
        config=_config_from(opts.config) if opts.config else None,
        ckpt_path=opts.ckpt_path,
        output=opts.output,
        format=opts.format,
        input_shape=opts.input_shape,
        static_hw=opts.static_hw,
        verify=not opts.no_verify,
        notice=_notice,
    )


def _embed(args: list[str]) -> int:
    from geoft.embed import embed_command  # torch-heavy: imported only for this command

    return embed_command(args)


def _sweep(args: list[str]) -> int:
    from geoft.sweeps.command import sweep_command  # Optuna and torch: imported only for this command

    return sweep_command(args, _notice)


# -- predict-scene ----------------------------------------------------------------------------------


def _predict_scene(args: list[str]) -> int:
    parser = _parser(
        "predict-scene",
        "Predict one GeoTIFF of any size, block by block, into a GeoTIFF (detection: a .geojson/.gpkg).",
    )
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument(
        "--input",
        required=True,
        action="append",
        help="GeoTIFF scene; repeat for one file per date (in time order); for a config with modalities, "
        "MODALITY=FILE per modality (repeated per date)",
    )
    parser.add_argument(
        "--grid", default=None, help="modality whose file is the output grid (default: the first modality)"
    )
    parser.add_argument("--output", required=True, help="GeoTIFF to write")
    parser.add_argument("--probabilities", default=None, help="also write class probabilities here")
    parser.add_argument(
        "--uncertainty",
        default=None,
        choices=["entropy", "margin"],
        help="segmentation: also write per-pixel entropy (or top-2 margin) beside --output as OUT_<kind>.tif",
    )
    parser.add_argument(
        "--bands", default=None, help="1-based band indexes to read, e.g. 2,3,4,8 (default: all)"
    )
    parser.add_argument("--block_size", type=int, default=512, help="rows read and written at a time")
    parser.add_argument(
        "--max_width", type=int, default=4096, help="widest column panel predicted at once (bounds memory)"
    )
    parser.add_argument("--tile_size", type=int, default=512, help="detection: tile size in pixels")
    parser.add_argument(
        "--overlap",
        type=int,
        default=64,
        help="detection: tile overlap in pixels (more than the largest object)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        default=None,
        choices=["32-true", "bf16-mixed", "16-mixed"],
        help="default: bf16-mixed where the device runs bf16 natively, else 32-true (as for training)",
    )
    opts = parser.parse_args(args)
    from geoft.storage import ensure_writable_dir

    # before the checkpoint loads: an unwritable output folder fails at once, naming it
    for out in (opts.output, opts.probabilities):
        if out:
            ensure_writable_dir(os.path.dirname(os.path.abspath(out)))
    from geoft.errors import ConfigError
    from geoft.io.scene import predict_scene_with_task
    from geoft.runs.restore import data_arguments, load_checkpoint, normalisation, task_from_checkpoint

    config = _config_from(opts.config) if opts.config else None
    ckpt = load_checkpoint(opts.ckpt_path)
    task = task_from_checkpoint(ckpt, config, opts.ckpt_path, _notice)
    bands = [int(b) for b in opts.bands.split(",")] if opts.bands else None
    data = data_arguments(config)
    if data.get("modalities"):
        from geoft.io.scene_config import modality_inputs

        if bands is not None or getattr(task, "task_kind", None) == "object_detection":
            raise ConfigError(
                "with modalities, --bands and detection are not supported: the config says the bands"
            )
        multi = modality_inputs(data, opts.input, ckpt, _notice)
        result = predict_scene_with_task(
            task, multi.inputs, opts.output, as_dict=multi.as_dict, grid=opts.grid,
            no_data_replace=multi.no_data_replace, probabilities_path=opts.probabilities,
            uncertainty=opts.uncertainty, block_size=opts.block_size, max_width=opts.max_width, device=opts.device, precision=opts.precision,
        )  # fmt: skip
        print(f"wrote {result.prediction} ({result.width}x{result.height} px, {result.tiles} tiles)")
        return 0
    if opts.grid is not None:
        raise ConfigError("--grid names a modality; the config has none (data.init_args.modalities)")
    norm = normalisation(config, ckpt, _notice)
    scene = opts.input[0] if len(opts.input) == 1 else opts.input  # several files: one per date
    if getattr(task, "task_kind", None) == "object_detection":
        if len(opts.input) > 1:
            raise ConfigError("detection predicts one scene: give one --input")
        from geoft.io.detection_scene import predict_scene_detections

        found = predict_scene_detections(
            task, scene, opts.output, means=norm.means, stds=norm.stds, bands=bands,
            constant_scale=norm.constant_scale, no_data_replace=norm.no_data_replace,
            tile_size=opts.tile_size, overlap=opts.overlap, device=opts.device, precision=opts.precision,
        )  # fmt: skip
        print(
            f"wrote {found.paths[0]} ({found.detections} objects, {found.width}x{found.height} px, {found.tiles} tiles)"
        )
        return 0
    result = predict_scene_with_task(
        task,
        scene,
        opts.output,
        means=norm.means,
        stds=norm.stds,
        bands=bands,
        constant_scale=norm.constant_scale,
        no_data_replace=norm.no_data_replace,
        probabilities_path=opts.probabilities,
        uncertainty=opts.uncertainty,
        block_size=opts.block_size,
        max_width=opts.max_width,
        device=opts.device,
        precision=opts.precision,
    )
    print(f"wrote {result.prediction} ({result.width}x{result.height} px, {result.tiles} tiles)")
    if result.uncertainty is not None:
        print(f"wrote {result.uncertainty} ({opts.uncertainty})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
