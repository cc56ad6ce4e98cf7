"""Make TerraTorch-shaped configs work unchanged.

* ``terratorch.X.Y`` names become ``geoft.X.Y`` (with a notice); names geoft does not have are an
  error that says what to use instead. The reference's own classes with a geoft or Lightning
  equivalent (``StateDictAwareModelCheckpoint``, ``terratorch.datasets.transforms.*``) map to it.
* Short class names (``SemanticSegmentationTask``, ``GenericNonGeoSegmentationDataModule``)
  resolve to their full geoft paths.
* Band intervals ``[start, end]`` in band lists expand to ``start..end``.
* The reference's tiling keys (``delta``, ``blend_overlaps``, ``padding``) become geoft's.
* ``custom_modules_path`` imports the user's modules (they register backbones, decoders...).
* Top-level keys only the reference's CLI knows (``out_dtype``, ``output_file_prefix``,
  ``deploy_config_file``) are dropped with a notice.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geoft.errors import ConfigError

Notice = Callable[[str], None]

_GEOFT_PACKAGES = ("geoft.tasks", "geoft.datamodules", "geoft.models")
_IGNORED_TOP_LEVEL = {
    "out_dtype": "class maps are written as uint8 with a colour table, other outputs as float32",
    "output_file_prefix": "prediction files are named <input stem>_pred.tif",
    "deploy_config_file": "geoft always writes deploy_config.yaml into the run folder",
}
# The reference's classes (by short name) that have an equivalent of another name, and why it is equal.
_EQUIVALENTS: dict[str, tuple[str, str]] = {
    "StateDictAwareModelCheckpoint": (
        "lightning.pytorch.callbacks.ModelCheckpoint",
        "geoft loads plain Lightning checkpoints as weights, so no separate state-dict file is needed",
    ),
}
_TEMPORAL_TRANSFORMS = (
    "FlattenTemporalIntoChannels",
    "UnflattenTemporalFromChannels",
    "FlattenSamplesIntoChannels",
    "UnflattenSamplesFromChannels",
)


def _exports(package: str) -> dict[str, str]:
    module = importlib.import_module(package)
    return dict(getattr(module, "_EXPORTS", {}))


def short_name_table() -> dict[str, str]:
    """Short class name -> full geoft path, for geoft's tasks, datamodules and models."""
    table: dict[str, str] = {}
    for package in _GEOFT_PACKAGES:
        for name in _exports(package):
            table.setdefault(name, f"{package}.{name}")
    for name in _TEMPORAL_TRANSFORMS:
        table[name] = f"geoft.datamodules.transforms.{name}"
    return table


def _resolvable(path: str) -> bool:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        return False
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    return hasattr(module, attr)


def resolve_name(name: str, notice: Notice) -> str:
    """Map a ``class_path``: ``terratorch.*`` -> ``geoft.*``, short geoft names -> full paths."""
    table = short_name_table()
    short = name.rpartition(".")[2]
    if short in _EQUIVALENTS and (name == short or name.startswith("terratorch.")):
        target, why = _EQUIVALENTS[short]
        notice(f"using {target} for {name} ({why})")
        return target
    if name.startswith("terratorch."):
        rest = name[len("terratorch.") :]
        candidates = [f"geoft.{rest}"] + ([table[short]] if short in table else [])
        for candidate in candidates:
            if _resolvable(candidate):
                notice(f"using {candidate} for {name}")
                return candidate
        from geoft.config.missing import no_equivalent

        raise no_equivalent(name)
    if "." not in name and name in table:
        return table[name]
    return name


def expand_band_intervals(bands: list[Any]) -> list[Any]:
    """``[[1, 6], "NDVI"]`` -> ``[1, 2, 3, 4, 5, 6, "NDVI"]`` (the reference's band intervals, inclusive)."""
    out: list[Any] = []
    for band in bands:
        if isinstance(band, list):
            if len(band) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in band):
                raise ConfigError(f"band interval {band!r} must be [start, end] with two integers")
            start, end = band
            if end < start:
                raise ConfigError(f"band interval {band!r} ends before it starts")
            out.extend(range(start, end + 1))
        else:
            out.append(band)
    return out


def translate_tiling(params: dict[str, Any], notice: Notice) -> dict[str, Any]:
    """The reference's ``tiled_inference_parameters`` keys in geoft's terms (others pass through)."""
    out = dict(params)
    if "blend_overlaps" in out:
        blend = out.pop("blend_overlaps")
        if "average_patches" not in out and "blend" not in out:
            out["blend"] = "cosine" if blend else "none"
    if "delta" in out:
        delta = out.pop("delta")
        if delta and "halo" not in out:
            out["halo"] = int(delta)
            notice(
                f"tiled_inference_parameters.delta: {delta} becomes halo: {delta} "
                "(geoft's blend window weights tile borders down instead of discarding them)"
            )
    if "padding" in out and not isinstance(out["padding"], str):
        padding = out.pop("padding")
        if padding:
            out["padding"] = "reflect"
    return out


def load_custom_modules(path: str | Path) -> list[str]:
    """Import every module of a folder (they register backbones, decoders... in geoft's registries)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(
            f"custom_modules_path {str(path)!r} is not a folder",
            hint="point it to a folder of Python modules that register components with geoft.registry",
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    names = sorted(
        p.stem if p.is_file() else p.name
        for p in folder.iterdir()
        if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and (p / "__init__.py").is_file())
    )
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:
            raise ConfigError(f"custom_modules_path: importing {name} from {folder} failed: {err}") from err
    return names


# Metric names of older reference versions (torchmetrics' class names) -> the names both log now.
_OLD_METRIC_NAMES = {
    "Multiclass_Jaccard_Index": "mIoU",
    "Multiclass_Accuracy": "Accuracy",
    "Multiclass_F1_Score": "F1_Score",
}


def translate_monitor(value: str, notice: Notice) -> str:
    stage, _, name = value.rpartition("/")
    if name in _OLD_METRIC_NAMES:
        new = f"{stage}/{_OLD_METRIC_NAMES[name]}" if stage else _OLD_METRIC_NAMES[name]
        notice(f"monitor {value} is logged as {new}")
        return new
    return value


def unique_placeholders(bands: list[Any], notice: Notice) -> list[Any]:
    """The reference marks bands a model does not use with a repeated int (``-1``); geoft needs unique names."""
    seen: dict[Any, int] = {}
    out: list[Any] = []
    for band in bands:
        if isinstance(band, int) and not isinstance(band, bool) and band in seen:
            seen[band] += 1
            out.append(f"UNUSED_{band}_{seen[band]}")
        else:
            seen.setdefault(band, 1)
            out.append(band)
    if out != bands:
        notice(
            f"dataset_bands: repeated placeholders became {[b for b in out if str(b).startswith('UNUSED_')]}"
        )
    return out


# model_args spelled the reference's way -> geoft's (the reference passes unknown ones on silently)
_MODEL_ARG_RENAMES = {"backbone_in_channels": "backbone_in_chans"}
_MODEL_ARGS_DROPPED = {
    "backbone_pretrain_img_size": "the pretrained position grid is read from the checkpoint and interpolated",
}


def translate_model_args(init_args: dict[str, Any], notice: Notice) -> None:
    """Reference spellings in ``model.init_args.model_args`` (in place)."""
    model_args = init_args.get("model_args")
    if not isinstance(model_args, dict):
        return
    for old, new in _MODEL_ARG_RENAMES.items():
        if old in model_args and new not in model_args:
            model_args[new] = model_args.pop(old)
            notice(f"model_args.{old} is called {new} in geoft")
    for key, why in _MODEL_ARGS_DROPPED.items():
        if key in model_args:
            model_args.pop(key)
            notice(f"ignoring model_args.{key}: {why}")
    _aspp_num_classes(model_args, notice)
    if init_args.get("model_factory") == "SMPModelFactory" and "bands" in model_args:
        bands = model_args.pop("bands")
        model_args.setdefault("in_channels", len(bands) if isinstance(bands, list) else bands)
        notice(
            "model_args.bands of SMPModelFactory: only their number (in_channels) is used, as in the reference"
        )


def _aspp_num_classes(model_args: dict[str, Any], notice: Notice) -> None:
    """The reference's configs give ``ASPPSegmentationHead`` its classes twice (``decoder_num_classes``
    and ``num_classes``); geoft's factory gives a decoder that includes its head ``num_classes``."""
    if model_args.get("decoder") != "ASPPSegmentationHead" or "decoder_num_classes" not in model_args:
        return
    given = model_args.pop("decoder_num_classes")
    classes = model_args.setdefault("num_classes", given)
    if classes != given:
        raise ConfigError(
            f"model_args.decoder_num_classes ({given}) and num_classes ({classes}) differ; "
            "ASPPSegmentationHead's classifier is the model's output",
            hint="give num_classes only",
        )
    notice("model_args.decoder_num_classes: geoft gives ASPPSegmentationHead the num_classes")


# data arguments of the reference's datamodules that only pick the bands of its sample plots
_PLOT_ONLY_DATA_ARGS = {
    "GenericMultiModalDataModule": ("rgb_modality", "rgb_indices"),
}


# data arguments of the reference that ask for a data layout geoft does not read, and why
_UNSUPPORTED_DATA_ARGS = {
    "GenericMultiModalDataModule": {
        "data_with_sample_dim": "files holding many samples each (the reference's zarr cubes) are not "
        "read; geoft reads one GeoTIFF per sample and modality",
    },
}


def drop_plot_only_data_args(data: dict[str, Any], notice: Notice) -> None:
    args = data.get("init_args")
    kind = str(data.get("class_path", "")).rpartition(".")[2]
    if not isinstance(args, dict) or not str(data.get("class_path", "")).startswith("geoft."):
        return
    for key, why in _UNSUPPORTED_DATA_ARGS.get(kind, {}).items():
        if args.get(key):
            raise ConfigError(f"data.init_args.{key}: {kind} of geoft has no {key}: {why}")
    for key in _PLOT_ONLY_DATA_ARGS.get(kind, ()):
        if key in args:
            args.pop(key)
            notice(
                f"ignoring data.init_args.{key}: it picks the bands of the reference's sample plots; "
                "geoft's figures take model.init_args.rgb_indices"
            )


def share_ignore_index(config: dict[str, Any], notice: Notice) -> None:
    """Model/data fixes that need both sections. The reference sets ``ignore_index`` on the task only; geoft's datamodules check labels with it too."""
    model = (config.get("model") or {}) if isinstance(config.get("model"), dict) else {}
    data = (config.get("data") or {}) if isinstance(config.get("data"), dict) else {}
    model_args, data_args = model.get("init_args"), data.get("init_args")
    drop_plot_only_data_args(data, notice)
    if isinstance(data_args, dict) and isinstance(data_args.get("dataset_bands"), list):
        data_args["dataset_bands"] = unique_placeholders(data_args["dataset_bands"], notice)
    if not (isinstance(model_args, dict) and isinstance(data_args, dict)):
        return
    value = model_args.get("ignore_index")
    path = str(data.get("class_path", ""))
    if value is None or "ignore_index" in data_args or not path.startswith("geoft.datamodules."):
        return
    data_args["ignore_index"] = value
    notice(
        f"data.init_args.ignore_index: {value} (from model.init_args.ignore_index, as the reference uses it)"
    )


def _different_mlp_decoder(config: dict[str, Any], notice: Notice) -> None:
    """Say so when a reference config's ``MLPDecoder`` becomes geoft's, which is another model."""
    model = config.get("model")
    if not isinstance(model, dict) or not str(model.get("class_path", "")).startswith("terratorch."):
        return
    args = (model.get("init_args") or {}).get("model_args") or {}
    if isinstance(args, dict) and args.get("decoder") == "MLPDecoder":
        notice(
            "decoder MLPDecoder: geoft's MLPDecoder (SegFormer-style, over every feature level) is not the "
            "reference's (one linear layer over the concatenated features); results and checkpoints differ"
        )


def translate(config: Any, notice: Notice, top_level: bool = True, key: str = "") -> Any:
    """Return a copy of a parsed config with geoft class paths and reference-only keys removed."""
    if isinstance(config, dict):
        out: dict[str, Any] = {}
        for name, value in config.items():
            if top_level and name in _IGNORED_TOP_LEVEL:
                notice(f"ignoring {name}: {_IGNORED_TOP_LEVEL[name]}")
                continue
            if top_level and name == "custom_modules_path":
                if value:
                    loaded = load_custom_modules(value)
                    notice(f"custom_modules_path: imported {', '.join(loaded) or 'nothing'} from {value}")
                continue
            if name == "class_path" and isinstance(value, str):
                out[name] = resolve_name(value, notice)
            elif isinstance(value, str) and value.startswith("terratorch."):
                out[name] = resolve_name(value, notice)
            elif isinstance(name, str) and name.endswith("bands") and isinstance(value, list):
                out[name] = expand_band_intervals(value)
            elif name == "monitor" and isinstance(value, str):
                out[name] = translate_monitor(value, notice)
            elif name == "tiled_inference_parameters" and isinstance(value, dict):
                out[name] = translate_tiling(value, notice)
            else:
                out[name] = translate(value, notice, top_level=False, key=str(name))
        if isinstance(out.get("model_args"), dict):
            translate_model_args(out, notice)
            loss = out.get("loss")
            if isinstance(loss, str) and loss != "ce" and out.get("class_weights") is not None:
                out.pop("class_weights")
                notice(
                    f"ignoring class_weights: loss {loss} does not use them (the reference ignores them too)"
                )
        if top_level:
            share_ignore_index(out, notice)
            _different_mlp_decoder(config, notice)
        return out
    if isinstance(config, list):
        return [translate(item, notice, top_level=False, key=key) for item in config]
    return config
