"""Cards of the backbones built from torchgeo's model code and weight enums.

The name tables here (name -> torchgeo model function and weights enum member) are the single
source for the builders in ``geoft.models.backbones.torchgeo_*``; they are plain strings, so the
catalog reads them without importing torch.
"""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

# name -> (torchgeo model function, "WeightsEnum.MEMBER"). The reference's names, plus (marked) the
# enum members the reference does not register, named the same way.
RESNETS: dict[str, tuple[str, str]] = {
    **{
        f"ssl4eol_{arch}_{member.lower()}": (arch, f"{enum}.{member}")
        for arch, enum in (("resnet18", "ResNet18_Weights"), ("resnet50", "ResNet50_Weights"))
        for member in (
            "LANDSAT_TM_TOA_MOCO",
            "LANDSAT_TM_TOA_SIMCLR",
            "LANDSAT_ETM_TOA_MOCO",
            "LANDSAT_ETM_TOA_SIMCLR",
            "LANDSAT_ETM_SR_MOCO",
            "LANDSAT_ETM_SR_SIMCLR",
            "LANDSAT_OLI_TIRS_TOA_MOCO",
            "LANDSAT_OLI_TIRS_TOA_SIMCLR",
            "LANDSAT_OLI_SR_MOCO",
            "LANDSAT_OLI_SR_SIMCLR",
        )
    },
    "ssl4eos12_resnet18_sentinel2_all_moco": ("resnet18", "ResNet18_Weights.SENTINEL2_ALL_MOCO"),
    "ssl4eos12_resnet18_sentinel2_rgb_moco": ("resnet18", "ResNet18_Weights.SENTINEL2_RGB_MOCO"),
    "seco_resnet18_sentinel2_rgb_seco": ("resnet18", "ResNet18_Weights.SENTINEL2_RGB_SECO"),
    "fmow_resnet50_fmow_rgb_gassl": ("resnet50", "ResNet50_Weights.FMOW_RGB_GASSL"),
    **{
        f"ssl4eos12_resnet50_{member.lower()}": ("resnet50", f"ResNet50_Weights.{member}")
        for member in (
            "SENTINEL1_ALL_DECUR",
            "SENTINEL1_ALL_MOCO",
            "SENTINEL2_ALL_DECUR",
            "SENTINEL2_ALL_DINO",
            "SENTINEL2_ALL_MOCO",
            "SENTINEL2_ALL_SOFTCON",
            "SENTINEL2_RGB_MOCO",
            # not registered by the reference:
            "SENTINEL1_GRD_CLOSP",
            "SENTINEL1_GRD_GEOCLOSP",
            "SENTINEL1_GRD_SOFTCON",
            "SENTINEL2_ALL_CLOSP",
            "SENTINEL2_ALL_GEOCLOSP",
        )
    },
    "seco_resnet50_sentinel2_rgb_seco": ("resnet50", "ResNet50_Weights.SENTINEL2_RGB_SECO"),
    "seco_resnet50_sentinel2_all_seco_eco": ("resnet50", "ResNet50_Weights.SENTINEL2_ALL_SECO_ECO"),
    "seco_resnet50_sentinel2_all_ndvi_seco_eco": ("resnet50", "ResNet50_Weights.SENTINEL2_ALL_NDVI_SECO_ECO"),
    **{
        f"satlas_resnet50_{member.lower()}": ("resnet50", f"ResNet50_Weights.{member}")
        for member in (
            "SENTINEL2_MI_MS_SATLAS",
            "SENTINEL2_MI_RGB_SATLAS",
            "SENTINEL2_SI_MS_SATLAS",
            "SENTINEL2_SI_RGB_SATLAS",
        )
    },
    # The reference drops "_satlas" from two of the four ResNet-152 names.
    "satlas_resnet152_sentinel2_mi_ms": ("resnet152", "ResNet152_Weights.SENTINEL2_MI_MS_SATLAS"),
    "satlas_resnet152_sentinel2_mi_rgb": ("resnet152", "ResNet152_Weights.SENTINEL2_MI_RGB_SATLAS"),
    "satlas_resnet152_sentinel2_si_ms_satlas": ("resnet152", "ResNet152_Weights.SENTINEL2_SI_MS_SATLAS"),
    "satlas_resnet152_sentinel2_si_rgb_satlas": ("resnet152", "ResNet152_Weights.SENTINEL2_SI_RGB_SATLAS"),
}

_VIT_SMALL_LANDSAT = (
    "LANDSAT_TM_TOA_MOCO",
    "LANDSAT_TM_TOA_SIMCLR",
    "LANDSAT_ETM_TOA_MOCO",
    "LANDSAT_ETM_TOA_SIMCLR",
    "LANDSAT_ETM_SR_MOCO",
    "LANDSAT_ETM_SR_SIMCLR",
    "LANDSAT_OLI_TIRS_TOA_MOCO",  # not registered by the reference
    "LANDSAT_OLI_TIRS_TOA_SIMCLR",
    "LANDSAT_OLI_SR_MOCO",
    "LANDSAT_OLI_SR_SIMCLR",
)
_VIT_SENTINEL = {
    # the reference registers only ViTSmall16 SENTINEL2_ALL_DINO and SENTINEL2_ALL_MOCO
    ("vit_small_patch16_224", "ViTSmall16_Weights"): (
        "SENTINEL2_ALL_DINO",
        "SENTINEL2_ALL_MOCO",
        "SENTINEL2_ALL_CLOSP",
        "SENTINEL2_ALL_MAE",
        "SENTINEL2_ALL_FGMAE",
        "SENTINEL1_GRD_CLOSP",
        "SENTINEL1_GRD_MAE",
        "SENTINEL1_GRD_FGMAE",
    ),
    ("vit_base_patch16_224", "ViTBase16_Weights"): (
        "SENTINEL2_ALL_MAE",
        "SENTINEL2_ALL_FGMAE",
        "SENTINEL1_GRD_MAE",
        "SENTINEL1_GRD_FGMAE",
    ),
    ("vit_large_patch16_224", "ViTLarge16_Weights"): (
        "SENTINEL2_ALL_CLOSP",
        "SENTINEL2_ALL_MAE",
        "SENTINEL2_ALL_FGMAE",
        "SENTINEL1_GRD_CLOSP",
        "SENTINEL1_GRD_MAE",
        "SENTINEL1_GRD_FGMAE",
    ),
    ("vit_huge_patch14_224", "ViTHuge14_Weights"): (
        "SENTINEL2_ALL_MAE",
        "SENTINEL2_ALL_FGMAE",
        "SENTINEL1_GRD_MAE",
        "SENTINEL1_GRD_FGMAE",
    ),
    ("vit_small_patch14_dinov2", "ViTSmall14_DINOv2_Weights"): (
        "SENTINEL2_ALL_SOFTCON",
        "SENTINEL1_GRD_SOFTCON",
    ),
    ("vit_base_patch14_dinov2", "ViTBase14_DINOv2_Weights"): (
        "SENTINEL2_ALL_SOFTCON",
        "SENTINEL1_GRD_SOFTCON",
    ),
}
VITS: dict[str, tuple[str, str]] = {
    **{
        f"ssl4eol_vit_small_patch16_224_{m.lower()}": ("vit_small_patch16_224", f"ViTSmall16_Weights.{m}")
        for m in _VIT_SMALL_LANDSAT
    },
    **{
        f"ssl4eos12_{arch}_{m.lower()}": (arch, f"{enum}.{m}")
        for (arch, enum), members in _VIT_SENTINEL.items()
        for m in members
    },
}

SWINS: dict[str, tuple[str, str]] = {
    **{
        f"satlas_swin_t_sentinel2_{kind}": ("swin_v2_t", f"Swin_V2_T_Weights.SENTINEL2_{kind.upper()}_SATLAS")
        for kind in ("mi_ms", "mi_rgb", "si_ms", "si_rgb")
    },
    **{
        f"satlas_swin_b_sentinel2_{kind}": ("swin_v2_b", f"Swin_V2_B_Weights.SENTINEL2_{kind.upper()}_SATLAS")
        for kind in ("mi_ms", "mi_rgb", "si_ms", "si_rgb")
    },
    "satlas_swin_b_naip_mi_rgb": ("swin_v2_b", "Swin_V2_B_Weights.NAIP_RGB_MI_SATLAS"),
    "satlas_swin_b_naip_si_rgb": ("swin_v2_b", "Swin_V2_B_Weights.NAIP_RGB_SI_SATLAS"),
    "satlas_swin_b_landsat_mi_ms": ("swin_v2_b", "Swin_V2_B_Weights.LANDSAT_MI_SATLAS"),
    # The reference's name for the single-image Landsat weights (11 bands, not RGB); kept for its
    # configs, with a correct alias below.
    "satlas_swin_b_landsat_mi_rgb": ("swin_v2_b", "Swin_V2_B_Weights.LANDSAT_SI_SATLAS"),
    "satlas_swin_b_landsat_si_ms": ("swin_v2_b", "Swin_V2_B_Weights.LANDSAT_SI_SATLAS"),
    "satlas_swin_b_sentinel1_mi": ("swin_v2_b", "Swin_V2_B_Weights.SENTINEL1_MI_SATLAS"),
    "satlas_swin_b_sentinel1_si": ("swin_v2_b", "Swin_V2_B_Weights.SENTINEL1_SI_SATLAS"),
}

_S2_13 = (
    "COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "RED_EDGE_1", "RED_EDGE_2", "RED_EDGE_3",
    "NIR_BROAD", "NIR_NARROW", "WATER_VAPOR", "CIRRUS", "SWIR_1", "SWIR_2",
)  # fmt: skip
_RGB = ("RED", "GREEN", "BLUE")
_BAND_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("LANDSAT_TM", ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "THERMAL_INFRARED_1", "SWIR_2")),
    ("LANDSAT_ETM_TOA", (
        "BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "THERMAL_INFRARED_1",
        "THERMAL_INFRARED_1_HIGH_GAIN", "SWIR_2", "PANCHROMATIC",
    )),
    ("LANDSAT_ETM_SR", ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")),
    ("LANDSAT_OLI_SR", ("COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")),
    ("LANDSAT", (
        "COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2", "PANCHROMATIC",
        "CIRRUS", "THERMAL_INFRARED_1", "THERMAL_INFRARED_2",
    )),
    ("SENTINEL2_ALL_SECO_ECO", _S2_13[:10] + _S2_13[11:]),
    ("SENTINEL2_ALL_NDVI_SECO_ECO", _S2_13[1:3] + _S2_13[3:9] + ("NDVI",)),
    ("SENTINEL2_ALL", _S2_13),
    ("_MS_SATLAS", _RGB + ("RED_EDGE_1", "RED_EDGE_2", "RED_EDGE_3", "NIR_BROAD", "SWIR_1", "SWIR_2")),
    ("RGB", _RGB),
    ("SENTINEL1_MI_SATLAS", ("VH", "VV")),
    ("SENTINEL1_SI_SATLAS", ("VH", "VV")),
    ("SENTINEL1", ("VV", "VH")),
)  # fmt: skip


def _bands_of(weights: str) -> tuple[str, ...]:
    """Published bands (geoft names, file order) of ``"Enum.MEMBER"``; checked against torchgeo by the tests."""
    member = weights.split(".")[1]
    return next(bands for key, bands in _BAND_RULES if key in member)


# Encoder parameters in millions at the published number of bands (measured on the built backbones;
# tests/models/test_backbone_torchgeo_cards.py checks a sample).
_PARAMS_M: dict[tuple[str, int], float] = {
    ("resnet18", 7): 11.2,
    ("resnet18", 9): 11.2,
    ("resnet18", 6): 11.2,
    ("resnet18", 11): 11.2,
    ("resnet50", 7): 23.5,
    ("resnet50", 9): 23.5,
    ("resnet50", 6): 23.5,
    ("resnet50", 11): 23.5,
    ("resnet18", 13): 11.2,
    ("resnet18", 3): 11.2,
    ("resnet50", 3): 23.5,
    ("resnet50", 2): 23.5,
    ("resnet50", 13): 23.5,
    ("resnet50", 12): 23.5,
    ("resnet152", 9): 58.2,
    ("resnet152", 3): 58.1,
    ("vit_small_patch16_224", 7): 22.1,
    ("vit_small_patch16_224", 9): 22.3,
    ("vit_small_patch16_224", 6): 22.0,
    ("vit_small_patch16_224", 11): 22.5,
    ("vit_small_patch16_224", 13): 22.6,
    ("vit_small_patch16_224", 2): 21.6,
    ("vit_base_patch16_224", 13): 87.8,
    ("vit_base_patch16_224", 2): 85.6,
    ("vit_large_patch16_224", 13): 305.9,
    ("vit_large_patch16_224", 2): 303.0,
    ("vit_huge_patch14_224", 13): 633.3,
    ("vit_huge_patch14_224", 2): 630.5,
    ("vit_small_patch14_dinov2", 13): 22.4,
    ("vit_small_patch14_dinov2", 2): 21.6,
    ("vit_base_patch14_dinov2", 13): 87.2,
    ("vit_base_patch14_dinov2", 2): 85.6,
    ("swin_v2_t", 9): 27.6,
    ("swin_v2_t", 3): 27.6,
    ("swin_v2_b", 9): 86.9,
    ("swin_v2_b", 3): 86.9,
    ("swin_v2_b", 11): 86.9,
    ("swin_v2_b", 2): 86.9,
}

_FAMILIES = {"resnet": "torchgeo ResNet", "vit": "torchgeo ViT", "swin": "Satlas Swin V2"}


def _card(module: str, name: str, arch: str, weights: str, inputs: str, output: str) -> BackboneCard:
    bands = _bands_of(weights)
    return BackboneCard(
        target=f"geoft.models.backbones.{module}:{name}",
        family=next(f for k, f in _FAMILIES.items() if arch.startswith(k)),
        inputs=inputs,
        published_bands=bands,
        weights=f"torchgeo {weights}",
        params_m=_PARAMS_M.get((arch, len(bands))),
        output=output,
    )


_BY_NAME = "bands by name (default the published ones; others start new); [B,C,H,W]"
CARDS: dict[str, BackboneCard] = {
    **{
        f"torchgeo_{arch}": BackboneCard(
            target=f"geoft.models.backbones.torchgeo_resnet:torchgeo_{arch}",
            family="torchgeo ResNet",
            inputs="any torchgeo ResNet weights (weights=...); bands by name or in_chans; [B,C,H,W], any size",
            weights=f"torchgeo ResNet{arch[6:]}_Weights.* (weights=)",
            params_m=params,
            output="pyramid",
        )
        for arch, params in (("resnet18", 11.2), ("resnet50", 23.5), ("resnet152", 58.1))
    },
    **{
        name: _card("torchgeo_resnet", name, arch, weights, f"{_BY_NAME}, any size", "pyramid")
        for name, (arch, weights) in RESNETS.items()
    },
    **{
        name: _card(
            "torchgeo_vit", name, arch, weights, f"{_BY_NAME}; H, W multiples of the patch size", "tokens"
        )
        for name, (arch, weights) in VITS.items()
    },
    **{
        name: _card("torchgeo_swin", name, arch, weights, f"{_BY_NAME}; H, W multiples of 32", "pyramid")
        for name, (arch, weights) in SWINS.items()
    },
}

_ANY = "any bands by name (wavelengths from the names); [B,C,H,W]"
_SPECTRAL = {
    # name: (target module, family, inputs, weights, params)
    "dofa_small_patch16_224": ("torchgeo_wavelength", "DOFA", f"{_ANY}; H, W multiples of 16",
                               "none published (ckpt_path only)", 34.7),
    "dofa_base_patch16_224": ("torchgeo_wavelength", "DOFA", f"{_ANY}; H, W multiples of 16",
                              "torchgeo DOFABase16_Weights.DOFA_MAE", 111.3),
    "dofa_large_patch16_224": ("torchgeo_wavelength", "DOFA", f"{_ANY}; H, W multiples of 16",
                               "torchgeo DOFALarge16_Weights.DOFA_MAE", 337.1),
    "copernicusfm_base": ("torchgeo_wavelength", "CopernicusFM", f"{_ANY}; H, W multiples of 16",
                          "torchgeo CopernicusFM_Base_Weights.CopernicusFM_ViT", 113.1),
    "panopticon_vitb14": ("torchgeo_wavelength", "Panopticon", f"{_ANY}; H, W multiples of 14",
                          "torchgeo Panopticon_Weights.VIT_BASE14", 98.1),
    "scalemae_large_patch16": ("torchgeo_croma_scalemae", "Scale-MAE",
                               "bands by name (published RGB); [B,C,img_size,img_size], res= m/px",
                               "torchgeo ScaleMAELarge16_Weights.FMOW_RGB", 303.3),
}  # fmt: skip
_CROMA_INPUTS = {
    "optical": "12 Sentinel-2 bands (all but B10) by name",
    "sar": "Sentinel-1 VV, VH",
    "joint": "12 Sentinel-2 bands then VV, VH, stacked",
}
_CROMA_BANDS = {"optical": _S2_13[:10] + _S2_13[11:], "sar": ("VV", "VH")}
_CROMA_BANDS["joint"] = _CROMA_BANDS["optical"] + _CROMA_BANDS["sar"]
_CROMA_PARAMS = {
    "base": {"optical": 85.6, "sar": 42.6, "joint": 184.9},
    "large": {"optical": 303.0, "sar": 151.3, "joint": 655.8},
}

CARDS.update(
    {
        name: BackboneCard(
            target=f"geoft.models.backbones.{module}:{name}",
            family=family,
            inputs=inputs,
            published_bands=("RED", "GREEN", "BLUE") if family == "Scale-MAE" else (),
            weights=weights,
            pretrained_needs="no published weights"
            if name == "dofa_small_patch16_224"
            else "internet, or a local ckpt_path",
            params_m=params,
        )
        for name, (module, family, inputs, weights, params) in _SPECTRAL.items()
    }
)
CARDS.update(
    {
        f"croma_{size}_{modality}": BackboneCard(
            target=f"geoft.models.backbones.torchgeo_croma_scalemae:croma_{size}_{modality}",
            family="CROMA",
            inputs=f"{_CROMA_INPUTS[modality]}; [B,C,image_size,image_size] (default 120, multiple of 8)",
            published_bands=_CROMA_BANDS[modality],
            weights=f"torchgeo CROMA{size.capitalize()}_Weights.CROMA_VIT",
            params_m=_CROMA_PARAMS[size][modality],
        )
        for size in ("base", "large")
        for modality in ("optical", "sar", "joint")
    }
)
