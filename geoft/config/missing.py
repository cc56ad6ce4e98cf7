"""One line on a reference (TerraTorch) class that geoft does not have: what it is and what to use instead."""

from __future__ import annotations

from geoft.errors import ConfigError

_GENERIC = (
    "GenericNonGeoSegmentationDataModule, GenericNonGeoPixelwiseRegressionDataModule, "
    "GenericNonGeoClassificationDataModule, GenericNonGeoScalarRegressionDataModule, "
    "GenericMultiModalDataModule or GenericObjectDetectionDataModule read the same data from folders"
)
# short name -> what it is (the reason geoft has no class of that name)
_KNOWN: dict[str, str] = {
    "TorchNonGeoDataModule": "loads a torchgeo dataset by name (download included)",
    "Sen1Floods11NonGeoDataModule": "a datamodule for the Sen1Floods11 dataset only",
    "MChesapeakeLandcoverNonGeoDataModule": "a datamodule for GEO-Bench's m-chesapeake-landcover only",
    "Sen4MapLucasDataModule": "a datamodule for the Sen4Map LUCAS HDF5 files only",
    "MultiTemporalCropClassificationDataModule": "a datamodule for the HLS multi-temporal crop dataset only",
    "ElephantDataModule": "an object-detection datamodule for the AED elephants dataset only",
    "SubstationDataModule": "an object-detection datamodule for the Substation dataset only",
    "mVHR10DataModule": "an object-detection datamodule for GEO-Bench's m-NWPU-VHR-10 only",
    "Merra2DownscaleNonGeoDataModule": "weather (MERRA-2 downscaling) data: weather models are not in geoft",
    "ERA5DataModule": "weather (ERA5) data: weather models are not in geoft",
    "WxCDownscalingTask": "a weather (Prithvi WxC) task: weather models are not in geoft",
    "WxCTask": "a weather (Prithvi WxC) task: weather models are not in geoft",
    "WxCModelFactory": "the weather (Prithvi WxC) model factory: weather models are not in geoft",
}


def no_equivalent(name: str) -> ConfigError:
    """The error for a ``terratorch.*`` class path with no geoft class."""
    short = name.rpartition(".")[2]
    what = _KNOWN.get(short)
    if ".datamodules." in f".{name}.":
        hint = f"geoft's {_GENERIC}"
        return ConfigError(f"{name} has no geoft equivalent" + (f": {what}" if what else ""), hint=hint)
    if ".tasks." in name:
        return ConfigError(
            f"{name} has no geoft equivalent" + (f": {what}" if what else ""),
            hint="geoft's tasks: SemanticSegmentationTask, PixelwiseRegressionTask, ClassificationTask, "
            "MultiLabelClassificationTask, ScalarRegressionTask, ObjectDetectionTask, EmbeddingGenerationTask, "
            "ReconstructionTask",
        )
    return ConfigError(f"{name} has no geoft equivalent" + (f": {what}" if what else ""))
