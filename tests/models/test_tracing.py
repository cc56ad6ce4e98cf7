"""Graph-capture helpers: the export path of adaptive pooling and Prithvi's position table."""

from __future__ import annotations

import pytest
import torch

import geoft.models.tracing as tracing
from geoft.models.tracing import AdaptiveAvgPool2d


@pytest.mark.parametrize("bins", [1, 2, 3, 6, (2, 5)])
@pytest.mark.parametrize("size", [(4, 4), (6, 8), (5, 7), (13, 3)])
def test_export_path_of_adaptive_pooling_matches_the_native_kernel(
    monkeypatch: pytest.MonkeyPatch, bins: int | tuple[int, int], size: tuple[int, int]
) -> None:
    x = torch.randn(2, 5, *size)
    pool = AdaptiveAvgPool2d(bins)
    native = pool(x)
    monkeypatch.setattr(tracing, "is_exporting", lambda: True)
    exported = pool(x)
    assert exported.shape == native.shape
    torch.testing.assert_close(exported, native, rtol=1e-5, atol=1e-6)


def test_prithvi_caches_position_tables_in_eager_mode_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from geoft.models.backbones import prithvi_vit
    from geoft.registry import BACKBONE_REGISTRY

    vit = BACKBONE_REGISTRY.build("prithvi_eo_tiny", in_chans=3, depth=1, img_size=32, pretrained=False)
    eager = vit.position_embedding((1, 3, 5), torch.device("cpu"))
    assert len(vit._pos_cache) == 1
    assert vit.position_embedding((1, 3, 5), torch.device("cpu")) is eager  # reused, not recomputed
    monkeypatch.setattr(prithvi_vit, "is_exporting", lambda: True)
    traced = vit.position_embedding((1, 4, 6), torch.device("cpu"))
    assert len(vit._pos_cache) == 1  # nothing cached while exporting
    assert traced.shape == (1, 24, vit.embed_dim)
