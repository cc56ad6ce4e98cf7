"""Export: the whole model to ONNX / TorchScript / torch.export, checked against PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from geoft.errors import ConfigError
from geoft.export import (
    ExportableModel,
    ExportError,
    export_info,
    export_onnx,
    export_pt2,
    export_torchscript,
    spatial_multiple,
)
from geoft.export_verify import verify_onnx, verify_pt2, verify_torchscript


class TinyNet(nn.Module):
    """A fully convolutional net with a stride-4 bottleneck (so H, W must be multiples of 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 8, 4, stride=4)
        self.up = nn.ConvTranspose2d(8, 5, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(x)))


class TokenNet(TinyNet):
    """Pretends to be a ViT with 4-pixel patches, so the export wrapper pads to multiples of 4."""

    output_format = "tokens"
    patch_size = (1, 4, 4)


@pytest.fixture(scope="module")
def prithvi_model() -> nn.Module:
    from geoft.models.factories.encoder_decoder import EncoderDecoderFactory

    torch.manual_seed(0)
    return (
        EncoderDecoderFactory()
        .build_model(
            "segmentation",
            backbone="prithvi_eo_tiny",
            decoder="FCNDecoder",
            num_classes=4,
            backbone_in_chans=3,
            backbone_depth=1,
            backbone_img_size=32,
            backbone_pretrained=False,
        )
        .eval()
    )


def test_dynamic_onnx_takes_patch_multiples_and_matches_pytorch_at_two_sizes(tmp_path: Path) -> None:
    model = TokenNet().eval()
    assert spatial_multiple(model) == 4
    path = export_onnx(model, tmp_path / "net.onnx", torch.randn(1, 3, 32, 32), dynamic_hw=True)
    info = export_info(path, "onnx")
    assert info == {
        "input_shape": [1, 3, 32, 32],
        "dynamic_batch": True,
        "dynamic_hw": True,
        "size_multiple": 4,
    }
    inputs = [torch.randn(1, 3, 32, 32), torch.randn(3, 3, 44, 72)]
    assert verify_onnx(model, path, inputs) < 1e-4
    import onnxruntime as ort

    out = ort.InferenceSession(str(path)).run(None, {"image": inputs[1].numpy()})[0]
    assert out.shape == (3, 5, 44, 72)
    with pytest.raises(ExportError, match="multiples of 4"):
        verify_onnx(model, path, torch.randn(1, 3, 45, 70))


def test_fixed_size_onnx_pads_inside_the_graph(tmp_path: Path) -> None:
    model = TokenNet().eval()
    path = export_onnx(model, tmp_path / "net.onnx", torch.randn(2, 3, 30, 33), dynamic_hw=False)
    assert export_info(path, "onnx")["dynamic_hw"] is False
    assert verify_onnx(model, path, [torch.randn(2, 3, 30, 33), torch.randn(1, 3, 30, 33)]) < 1e-4


def test_encoder_decoder_model_exports_whole_and_matches_onnxruntime(
    tmp_path: Path, prithvi_model: nn.Module
) -> None:
    example = torch.randn(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fixed-size fallback for geoft's own models
        path = export_onnx(prithvi_model, tmp_path / "prithvi.onnx", example)
    info = export_info(path, "onnx")
    assert info["dynamic_batch"] and info["dynamic_hw"] and info["size_multiple"] == 16
    inputs = [example, torch.randn(2, 3, 32, 32), torch.randn(1, 3, 48, 80)]
    assert verify_onnx(prithvi_model, path, inputs) < 1e-3
    # the decoder and head are in the graph: the output has num_classes channels at full resolution
    import onnxruntime as ort

    out = ort.InferenceSession(str(path)).run(None, {"image": inputs[1].numpy()})[0]
    assert out.shape == (2, 4, 32, 32)


def _factory_model(backbone: str, decoder: str, **args: object) -> nn.Module:
    from geoft.models.factories.encoder_decoder import EncoderDecoderFactory

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone=backbone, decoder=decoder, num_classes=3, backbone_pretrained=False, **args
    )
    return model.eval()


@pytest.mark.parametrize(
    ("backbone", "decoder", "args", "multiple"),
    [
        (
            "prithvi_eo_tiny",
            "UperNetDecoder",
            {
                "backbone_in_chans": 3,
                "backbone_depth": 1,
                "backbone_img_size": 64,
                "necks": [
                    {"name": "SelectIndices", "indices": [0, 0, 0, 0]},
                    {"name": "ReshapeTokensToImage"},
                    {"name": "LearnedInterpolateToPyramidal"},
                ],
            },
            16,
        ),
        ("timm_resnet18", "UNetDecoder", {"backbone_in_chans": 3}, 32),
    ],
    ids=["prithvi-upernet", "resnet18-unet"],
)
def test_factory_models_export_with_dynamic_height_and_width(
    tmp_path: Path, backbone: str, decoder: str, args: dict, multiple: int
) -> None:
    model = _factory_model(backbone, decoder, **args)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        path = export_onnx(model, tmp_path / "model.onnx", torch.randn(1, 3, 64, 64))
    info = export_info(path, "onnx")
    assert info["dynamic_batch"] and info["dynamic_hw"] and info["size_multiple"] == multiple
    # two sizes (one not square) and another batch size, all through the same graph
    inputs = [torch.randn(1, 3, 64, 64), torch.randn(2, 3, 96, 128)]
    assert verify_onnx(model, path, inputs, rtol=1e-4, atol=1e-5) < 1e-5


def test_models_that_fix_their_size_fall_back_to_a_fixed_graph_with_a_warning(tmp_path: Path) -> None:
    class SizeBound(TinyNet):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # int() of a size fixes it in a traced graph: this model cannot be dynamic
            half = (int(x.shape[-2]) // 2, int(x.shape[-1]) // 2)
            return super().forward(nn.functional.interpolate(x, size=half))

    model = SizeBound().eval()
    with pytest.warns(
        UserWarning, match=r"cannot be exported with dynamic height/width.*fixed size \(32, 32\)"
    ):
        path = export_onnx(model, tmp_path / "net.onnx", torch.randn(1, 3, 32, 32))
    assert export_info(path, "onnx")["dynamic_hw"] is False
    assert verify_onnx(model, path, torch.randn(2, 3, 32, 32)) < 1e-4


def test_verify_onnx_detects_a_different_model(tmp_path: Path) -> None:
    model = TinyNet().eval()
    path = export_onnx(model, tmp_path / "net.onnx", torch.randn(2, 3, 16, 16), dynamic_hw=False)
    other = TinyNet().eval()
    with pytest.raises(ExportError, match="differs"):
        verify_onnx(other, path, torch.randn(2, 3, 16, 16))
    with pytest.raises(ExportError, match="could not run"):
        verify_onnx(model, path, torch.randn(1, 3, 24, 24))  # fixed H/W graph


def test_torchscript_and_torch_export(tmp_path: Path) -> None:
    model = TinyNet().eval()
    example = torch.randn(2, 3, 16, 16)
    ts = export_torchscript(model, tmp_path / "net.pt", example)
    assert verify_torchscript(model, ts, [example]) < 1e-5
    token_model = TokenNet().eval()
    pt2 = export_pt2(token_model, tmp_path / "net.pt2", example, dynamic_hw=True)
    assert export_info(pt2, "pt2")["dynamic_hw"] is True
    assert verify_pt2(token_model, pt2, [example, torch.randn(1, 3, 24, 40)]) < 1e-5


def test_export_wrapper_handles_multitemporal_input() -> None:
    class Temporal(nn.Module):
        output_format = "tokens"
        patch_size = (1, 4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0
            return x.mean(2)

    x = torch.randn(1, 2, 3, 10, 13)
    out = ExportableModel(Temporal(), multiple=4)(x)
    assert out.shape == (1, 2, 10, 13)
    assert torch.allclose(out, x.mean(2))


def test_bad_example_input_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="example input"):
        export_onnx(TinyNet(), tmp_path / "x.onnx", torch.randn(3, 16, 16))
