"""Prithvi on a real 10-band HLS L30 chip: band selection by name, coordinates from the georeference."""

from __future__ import annotations

import pytest
import rasterio
import torch
from rasterio.warp import transform as warp_transform

from geoft.models.backbones.bands import PRITHVI_BANDS
from geoft.models.backbones.prithvi import build_prithvi
from geoft.models.backbones.prithvi_weights import load_prithvi_checkpoint

HLS_L30_BANDS = [
    "COASTAL_AEROSOL",
    "BLUE",
    "GREEN",
    "RED",
    "NIR_NARROW",
    "SWIR_1",
    "SWIR_2",
    "CIRRUS",
    "THERMAL_INFRARED_1",
    "THERMAL_INFRARED_2",
]


@pytest.mark.real_data
def test_real_hls_chip_with_extra_bands(real_data):
    path = real_data / "hls_l30_chip_terratorch" / "hls_l30_texas_224.tif"
    with rasterio.open(path) as src:
        image = torch.from_numpy(src.read().astype("float32"))
        bounds, crs = src.bounds, src.crs
    lon, lat = warp_transform(
        crs, "EPSG:4326", [(bounds.left + bounds.right) / 2], [(bounds.top + bounds.bottom) / 2]
    )
    image[image == -9999] = 0.0
    mean = image.mean(dim=(1, 2), keepdim=True)
    std = image.std(dim=(1, 2), keepdim=True).clamp_min(1e-3)
    x = ((image - mean) / std).unsqueeze(0)  # [1, 10, 224, 224]

    torch.manual_seed(0)
    six = build_prithvi("prithvi_eo_v2_tiny_tl", depth=1).eval()  # the pretrained bands, in order
    ten = build_prithvi("prithvi_eo_v2_tiny_tl", depth=1, bands=HLS_L30_BANDS).eval()
    state = {f"encoder.{k}": v for k, v in six.state_dict().items()}
    report = load_prithvi_checkpoint(ten, state, PRITHVI_BANDS)
    assert "CIRRUS" in report.adapted["patch_embed.proj.weight"]
    assert ten.mean[1:7] == list(six.mean) and ten.mean[0] is None

    coords = {
        "temporal_coords": torch.tensor([[[2021.0, 172.0]]]),
        "location_coords": torch.tensor([[lat[0], lon[0]]], dtype=torch.float32),
    }
    assert 28.4 < lat[0] < 28.7 and -99.7 < lon[0] < -99.5
    with torch.no_grad():
        ten.patch_embed.proj.weight[:, [0, 7, 8, 9]] = 0.0  # silence the new bands
        tokens10 = ten(x, **coords)[0]
        tokens6 = six(x[:, 1:7], **coords)[0]
    assert tokens10.shape == (1, 1 + 14 * 14, 192) and torch.isfinite(tokens10).all()
    assert torch.allclose(tokens10, tokens6, atol=1e-4)
