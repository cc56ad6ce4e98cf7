"""Clay's inputs: band wavelengths as data, the wavelength-conditioned patch embedding, positions with GSD.

Clay (v1 and v1.5) has no fixed input layer. A small transformer turns the centre wavelength of
each band into that band's patch-embedding kernel, so any set of bands works with the same weights.
geoft derives the wavelengths from band names (:data:`CLAY_WAVELENGTHS_UM`); users never type
microns. Module and parameter names follow the published checkpoints
(``patch_embedding.weight_generator.*``, ``patch_embedding.fclayer.*``), so they load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.bands import Band, BandLike, band_label, normalize_band

#: Centre wavelength (micrometres) Clay was pretrained with for each band (Clay's ``metadata.yaml``:
#: Sentinel-2 L2A for the optical bands, Sentinel-1 RTC's stand-in values for VV / VH). Bands Clay
#: never saw in pretraining (coastal, water vapour, cirrus, thermal) get their physical centre.
CLAY_WAVELENGTHS_UM: dict[Band, float] = {
    Band.COASTAL_AEROSOL: 0.443,
    Band.BLUE: 0.493,
    Band.GREEN: 0.56,
    Band.RED: 0.665,
    Band.RED_EDGE_1: 0.704,
    Band.RED_EDGE_2: 0.74,
    Band.RED_EDGE_3: 0.783,
    Band.NIR_BROAD: 0.842,
    Band.NIR_NARROW: 0.865,
    Band.WATER_VAPOR: 0.945,
    Band.CIRRUS: 1.375,
    Band.SWIR_1: 1.61,
    Band.SWIR_2: 2.19,
    Band.THERMAL_INFRARED_1: 10.9,
    Band.THERMAL_INFRARED_2: 12.0,
    Band.VV: 3.5,
    Band.VH: 4.0,
}

#: Clay's own band names (its ``metadata.yaml``), as written in configs for the reference. Note that
#: Clay's ``nir`` is Sentinel-2 B08 (broad NIR) while geoft's ``NIR`` means the narrow NIR (B8A).
CLAY_BAND_NAMES: dict[str, Band] = {
    "blue": Band.BLUE,
    "green": Band.GREEN,
    "red": Band.RED,
    "rededge1": Band.RED_EDGE_1,
    "rededge2": Band.RED_EDGE_2,
    "rededge3": Band.RED_EDGE_3,
    "nir": Band.NIR_BROAD,
    "nir08": Band.NIR_NARROW,
    "swir16": Band.SWIR_1,
    "swir22": Band.SWIR_2,
    "vv": Band.VV,
    "vh": Band.VH,
}

#: Sentinel-2 L2A (reflectance x 10000) and Sentinel-1 RTC statistics of Clay's pretraining data.
CLAY_MEAN: dict[Band, float] = {
    Band.BLUE: 1105.0, Band.GREEN: 1355.0, Band.RED: 1552.0, Band.RED_EDGE_1: 1887.0,
    Band.RED_EDGE_2: 2422.0, Band.RED_EDGE_3: 2630.0, Band.NIR_BROAD: 2743.0, Band.NIR_NARROW: 2785.0,
    Band.SWIR_1: 2388.0, Band.SWIR_2: 1835.0, Band.VV: 0.123273, Band.VH: 0.027337,
}  # fmt: skip
CLAY_STD: dict[Band, float] = {
    Band.BLUE: 1809.0, Band.GREEN: 1757.0, Band.RED: 1888.0, Band.RED_EDGE_1: 1870.0,
    Band.RED_EDGE_2: 1732.0, Band.RED_EDGE_3: 1697.0, Band.NIR_BROAD: 1742.0, Band.NIR_NARROW: 1648.0,
    Band.SWIR_1: 1470.0, Band.SWIR_2: 1379.0, Band.VV: 1.492154, Band.VH: 0.122182,
}  # fmt: skip


def clay_band(band: BandLike) -> BandLike:
    """A band name in Clay's spelling (``swir16``) or geoft's (``SWIR_1``), as a geoft band."""
    if isinstance(band, str) and band.strip() in CLAY_BAND_NAMES:
        return CLAY_BAND_NAMES[band.strip()]
    return normalize_band(band)


def band_wavelengths(
    bands: Sequence[BandLike], wavelengths: Sequence[float] | None = None
) -> tuple[list[BandLike], list[float]]:
    """The bands as geoft bands and the wavelength (micrometres) of each.

    Args:
        bands: band names (geoft's or Clay's spelling).
        wavelengths: explicit centre wavelengths, one per band, for sensors geoft does not know.
    """
    if isinstance(bands, str | bytes) or not isinstance(bands, Sequence) or not bands:
        raise ConfigError(f"bands must be a non-empty list of band names, got {bands!r}")
    resolved = [clay_band(b) for b in bands]
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"bands lists a band twice: {', '.join(map(band_label, resolved))}")
    if wavelengths is not None:
        values = [float(w) for w in wavelengths]
        if len(values) != len(resolved) or any(not 0.0 < w < 1e6 for w in values):
            raise ConfigError(
                f"wavelengths must give one positive value per band ({len(resolved)}), got {list(wavelengths)}"
            )
        return resolved, values
    unknown = [band_label(b) for b in resolved if b not in CLAY_WAVELENGTHS_UM]
    if unknown:
        known = ", ".join(b.value for b in CLAY_WAVELENGTHS_UM)
        raise ConfigError(
            f"Clay needs the wavelength of every band, and geoft has none for {', '.join(unknown)}.",
            hint=f"Use band names with a known wavelength ({known}; or Clay's names such as 'swir16'), "
            "or pass wavelengths=[...] (micrometres, one per band).",
        )
    return resolved, [CLAY_WAVELENGTHS_UM[b] for b in resolved]  # type: ignore[index]


def wave_sincos(waves: torch.Tensor, dim: int) -> torch.Tensor:
    """``[C, dim]`` sin / cos code of wavelengths, frequencies ``10000^(-k / (dim/2 - 1))``."""
    half = dim // 2
    omega = 10000.0 ** -(torch.arange(half, device=waves.device, dtype=torch.float32) / (half - 1))
    angles = waves.float().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def gsd_position_table(
    height: int, width: int, dim: int, gsd: float, device: torch.device | None = None
) -> torch.Tensor:
    """``[h*w, dim]`` Clay position code: x sin, x cos, y sin, y cos; frequencies scaled by the GSD.

    The exponent ``2k / ((dim/4 - 1) * dim)`` is the one Clay was pretrained with (frequencies
    stay close to ``gsd``); it is kept as is so that pretrained weights see what they learned on.
    """
    quarter = dim // 4
    k = torch.arange(quarter, device=device, dtype=torch.float32) / (quarter - 1)
    omega = gsd / 10000.0 ** (2 * k / dim)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    x_angles = xs.reshape(-1, 1) * omega.reshape(1, -1)
    y_angles = ys.reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([x_angles.sin(), x_angles.cos(), y_angles.sin(), y_angles.cos()], dim=1)


class WaveResidualMLP(nn.Module):
    """Two GELU layers with a skip connection, applied to the wavelength codes."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(dim, dim)
        self.l2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.l2(F.gelu(self.l1(x))))


class WaveKernelGenerator(nn.Module):
    """A one-layer transformer over [learned weight tokens, band codes, bias token] that returns
    one patch kernel per band and the embedding bias."""

    def __init__(self, wave_dim: int, kernel_numel: int, embed_dim: int, num_latent_tokens: int) -> None:
        super().__init__()
        self.num_latent_tokens = num_latent_tokens
        layer = nn.TransformerEncoderLayer(
            d_model=wave_dim, nhead=4, activation="gelu", dropout=0.0, norm_first=False
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.fc_weight = nn.Linear(wave_dim, kernel_numel)
        self.fc_bias = nn.Linear(wave_dim, embed_dim)
        self.weight_tokens = nn.Parameter(torch.randn(num_latent_tokens, wave_dim) * 0.02)
        self.bias_token = nn.Parameter(torch.randn(1, wave_dim) * 0.02)

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.cat(
            [self.weight_tokens.to(codes.dtype), codes, self.bias_token.to(codes.dtype)], dim=0
        )
        out = self.encoder(tokens)
        bands = slice(self.num_latent_tokens, -1)
        return self.fc_weight(out[bands] + tokens[bands]), self.fc_bias(out[-1])


class WavePatchEmbedding(nn.Module):
    """Patchify ``[B, C, H, W]`` into ``[B, h*w, D]`` with kernels generated from the C wavelengths."""

    def __init__(self, patch_size: int, embed_dim: int, wave_dim: int = 128, num_latent_tokens: int = 128):
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.wave_dim = wave_dim
        self.weight_generator = WaveKernelGenerator(
            wave_dim, patch_size * patch_size * embed_dim, embed_dim, num_latent_tokens
        )
        self.fclayer = WaveResidualMLP(wave_dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def kernel(self, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv weight ``[D, C, p, p]`` and bias ``[D]`` for bands of these wavelengths."""
        codes = self.fclayer(wave_sincos(waves, self.wave_dim))
        weight, bias = self.weight_generator(codes)
        p = self.patch_size
        weight = weight.reshape(-1, self.embed_dim, p, p).transpose(0, 1)
        # The generated kernel is scaled by 0.02, as in pretraining.
        return weight * 0.02, bias

    def forward(self, x: torch.Tensor, waves: torch.Tensor) -> torch.Tensor:
        weight, bias = self.kernel(waves)
        out = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), stride=self.patch_size)
        return out.flatten(2).transpose(1, 2)
