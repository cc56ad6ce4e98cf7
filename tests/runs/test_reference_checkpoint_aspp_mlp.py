"""The reference's ASPP heads (``ASPPSegmentationHead``, ``ASPPRegressionHead``): configs naming them
build, and checkpoints in the reference's layout load strictly and predict the same.

The layout is read from the reference's ``aspp_head.py`` (``image_pool`` = pooling + ConvModule,
``aspp_modules.model_sequence.N`` and ``bottleneck`` ConvModules of conv/norm/act, ``conv_seg`` or
``conv_reg``) and ``regression_head.py`` (``head`` = Sequential(*pre_layers, dropout, final conv)).
The reference's ``MLPDecoder`` (``mlp_decoder.py``: one Linear ``hidden_layer`` over the concatenated
features) has no geoft equivalent: its checkpoint is one error naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from geoft.config import load_configs
from geoft.runs.reference_layout import translate_reference_state
from geoft.runs.restore import load_checkpoint, task_from_checkpoint
from geoft.tasks import PixelwiseRegressionTask, SemanticSegmentationTask
from tests.runs.test_reference_checkpoint import BASE_ARGS, to_reference_layout, unfolded

NECKS = [{"name": "SelectIndices", "indices": [1]}, {"name": "ReshapeTokensToImage"}]
ASPP = {"decoder_dilations": [1, 2, 3], "decoder_channels": 8, "decoder_in_channels": 256}
CASES: dict[str, dict[str, Any]] = {
    "segmentation": {"decoder": "ASPPSegmentationHead", **ASPP},
    # the reference's factory puts its RegressionHead on the decoder's out_channels
    "regression": {"decoder": "ASPPRegressionHead", **ASPP, "decoder_out_channels": 2},
    "regression+head layers": {
        "decoder": "ASPPRegressionHead",
        **ASPP,
        "head_learned_upscale_layers": 1,
        "head_channel_list": [4, 4],
    },
}
TASKS = {"segmentation": SemanticSegmentationTask, "regression": PixelwiseRegressionTask}
TO_REFERENCE = (  # geoft's ConvBNReLU sequential is the reference's ConvModule(conv, norm, act)
    (r"^(model\.decoder)\.branches\.(\d+)\.0\.", r"\1.aspp_modules.model_sequence.\2.conv."),
    (r"^(model\.decoder)\.branches\.(\d+)\.1\.", r"\1.aspp_modules.model_sequence.\2.norm."),
    (r"^(model\.decoder)\.bottleneck\.0\.", r"\1.bottleneck.conv."),
    (r"^(model\.decoder)\.bottleneck\.1\.", r"\1.bottleneck.norm."),
)


def model_args(case: str) -> dict[str, Any]:
    args = {**BASE_ARGS, "necks": NECKS, **CASES[case]}
    if case == "segmentation":
        args["decoder_num_classes"] = args["num_classes"]  # as the reference's configs give it
    else:
        args.pop("num_classes")
    return args


def kind(case: str) -> str:
    return case.partition("+")[0]


def geoft_task(case: str) -> torch.nn.Module:
    torch.manual_seed(0)
    args = model_args(case)
    args.pop("decoder_num_classes", None)
    task = TASKS[kind(case)](model_factory="EncoderDecoderFactory", model_args=args)
    with torch.no_grad():  # BatchNorm statistics and weights away from their init
        for name, value in task.model.state_dict().items():
            if value.is_floating_point():
                value.add_(
                    0.05 * (torch.rand_like(value) if "running_var" in name else torch.randn_like(value))
                )
    return task.eval()


def regression_head_to_reference(key: str, ups: int, blocks: bool, ref: str = "model.head") -> str:
    """geoft's RegressionHead keys (ups flat, then conv blocks flat, dropout, conv) as the reference's
    (its head at ``ref``)."""
    index, rest = re.match(r"^.*?\.head\.head\.(\d+)\.(.*)$", key).groups()
    index = int(index)
    if index < ups:  # _PixelShuffleUp(conv, shuffle, bn, relu) -> PixelShuffleUpscale(conv, bn)
        place, param = rest.split(".", 1)
        return f"{ref}.head.0.{index}.{'conv' if place == '0' else 'bn'}.{param}"
    if index == ups:  # conv blocks (conv, bn, relu) each
        place, param = rest.split(".", 1)
        return f"{ref}.head.{1 if ups else 0}.{int(place) // 3}.{int(place) % 3}.{param}"
    return f"{ref}.head.{(1 if ups else 0) + (1 if blocks else 0) + 1}.{rest}"


def aspp_reference_layout(task: torch.nn.Module, case: str) -> dict[str, torch.Tensor]:
    ours = task.state_dict()
    out = {
        k: v
        for k, v in to_reference_layout(task).items()
        if not k.startswith(("model.decoder.", "model.head."))
    }
    g = torch.Generator().manual_seed(1)
    out.update(unfolded(ours["model.decoder.image_pool.1.weight"], ours["model.decoder.image_pool.1.bias"],
                        "model.decoder.image_pool.1.", g))  # fmt: skip
    for key, value in ours.items():
        if key.startswith("model.decoder.") and not key.startswith("model.decoder.image_pool."):
            for pattern, replacement in TO_REFERENCE:
                key = re.sub(pattern, replacement, key)
            out[key] = value.clone()
        elif key.startswith("model.head."):
            ups = CASES[case].get("head_learned_upscale_layers", 0)
            out[regression_head_to_reference(key, ups, "head_channel_list" in CASES[case])] = value.clone()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_reference_aspp_checkpoint_loads_strictly_and_predicts_the_same(case: str, tmp_path: Path) -> None:
    original = geoft_task(case)
    layout = aspp_reference_layout(original, case)
    assert "model.decoder.image_pool.1.norm.running_var" in layout
    assert ("model.decoder.conv_seg.weight" in layout) == (case == "segmentation")
    task_class = f"terratorch.tasks.{TASKS[kind(case)].__name__}"
    path = tmp_path / "reference.ckpt"
    torch.save({"epoch": 0, "global_step": 2, "state_dict": layout,
                "hyper_parameters": {"_class_path": task_class, "model_args": model_args(case)}}, path)  # fmt: skip
    config_path = tmp_path / "config.yaml"
    init_args = {"model_factory": "EncoderDecoderFactory", "model_args": model_args(case)}
    config_path.write_text(yaml.safe_dump({"model": {"class_path": task_class, "init_args": init_args}}))
    said: list[str] = []
    config = load_configs([str(config_path)], said.append)
    assert any("decoder_num_classes" in line for line in said) == (case == "segmentation")
    restored = task_from_checkpoint(load_checkpoint(path), config, str(path), said.append)
    assert "ASPP heads image pooling (BatchNorm folded into the conv)" in said[-1]
    x = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        expected, got = original.model(x).output, restored.model(x).output
    channels = (3,) if case == "segmentation" else ()  # one value per pixel
    assert got.shape == (2, *channels, 32, 32)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), float((got - expected).abs().max())


def test_the_upernet_bottleneck_rename_leaves_aspp_alone() -> None:
    """Both of the reference's decoders name a ConvModule ``bottleneck``; each maps to its own name."""
    from geoft.runs.reference_layout import _rename_all

    ours: set[str] = set()
    upernet = {
        "model.decoder.bottleneck.conv.weight": torch.zeros(1),
        "model.decoder.psp_modules.0.1.conv.weight": torch.zeros(1),
    }
    aspp = {
        "model.decoder.bottleneck.conv.weight": torch.zeros(1),
        "model.decoder.aspp_modules.model_sequence.0.conv.weight": torch.zeros(1),
    }
    assert "model.decoder.psp_bottleneck.0.weight" in _rename_all(upernet, ours)
    assert set(_rename_all(aspp, ours)) == {
        "model.decoder.bottleneck.0.weight",
        "model.decoder.branches.0.0.weight",
    }


def test_aspp_head_arguments_the_reference_reads_but_geoft_does_not_are_errors() -> None:
    from geoft.errors import ConfigError
    from geoft.registry import DECODER_REGISTRY

    with pytest.raises(ConfigError, match="in_channels is 6 but feature -1 has 16 channels"):
        DECODER_REGISTRY.build("ASPPSegmentationHead", [8, 16], in_channels=6, channels=8)
    with pytest.raises(ConfigError, match="input_transform 'resize_concat' is not supported"):
        DECODER_REGISTRY.build("ASPPRegressionHead", [8, 16], channels=8, input_transform="resize_concat")


def test_a_reference_mlp_decoder_checkpoint_is_one_error_naming_it(tmp_path: Path) -> None:
    from geoft.errors import CheckpointError

    args = {**BASE_ARGS, "necks": [{"name": "SelectIndices", "indices": [0, 1]}, {"name": "ReshapeTokensToImage"}],
            "decoder": "MLPDecoder", "decoder_channels": 8}  # fmt: skip
    task = SemanticSegmentationTask(model_factory="EncoderDecoderFactory", model_args=args).eval()
    layout = {k: v for k, v in to_reference_layout(task).items() if not k.startswith("model.decoder.")}
    # the reference's MLPDecoder: out_channels = embed_dim[out_index]; Linear(out_channels * n, out_channels)
    layout["model.decoder.hidden_layer.weight"] = torch.randn(256, 2 * 256)
    layout["model.decoder.hidden_layer.bias"] = torch.randn(256)
    path = tmp_path / "reference.ckpt"
    torch.save(
        {
            "state_dict": layout,
            "hyper_parameters": {"_class_path": "terratorch.tasks.SemanticSegmentationTask"},
        },
        path,
    )
    config = {"model": {"class_path": "SemanticSegmentationTask",
                        "init_args": {"model_factory": "EncoderDecoderFactory", "model_args": args}}}  # fmt: skip
    with pytest.raises(
        CheckpointError, match=r"the reference's MLPDecoder .*geoft's MLPDecoder is SegFormer-style"
    ):
        task_from_checkpoint(load_checkpoint(path), config, str(path))


def test_the_lightning_hook_translates_an_aspp_regression_checkpoint_for_resume() -> None:
    """What ``fit --ckpt_path`` runs before Lightning's strict load (``on_load_checkpoint``)."""
    case = "regression+head layers"
    original = geoft_task(case)
    ckpt = {"state_dict": aspp_reference_layout(original, case), "optimizer_states": [],
            "hyper_parameters": {"_class_path": "terratorch.tasks.PixelwiseRegressionTask"}}  # fmt: skip
    task = PixelwiseRegressionTask(model_factory="EncoderDecoderFactory", model_args=model_args(case)).eval()
    task.on_load_checkpoint(ckpt)
    task.load_state_dict(ckpt["state_dict"], strict=True)
    x = torch.randn(1, 6, 32, 32)
    with torch.no_grad():
        assert torch.allclose(task.model(x).output, original.model(x).output, atol=1e-5, rtol=1e-5)


def test_an_auxiliary_regression_head_in_the_reference_layout_loads(tmp_path: Path) -> None:
    """The reference's auxiliary head is Sequential(decoder, head): its RegressionHead lies at ``.1``."""
    args = {**BASE_ARGS, "necks": NECKS, "decoder": "FCNDecoder", "decoder_channels": 8}
    args.pop("num_classes")
    aux = [{"name": "aux", "decoder": "FCNDecoder",
            "decoder_args": {"decoder_channels": 8, "decoder_num_convs": 1, "head_channel_list": [4]}}]  # fmt: skip
    torch.manual_seed(0)
    original = PixelwiseRegressionTask(model_factory="EncoderDecoderFactory", model_args=args, aux_heads=aux)
    original.eval()
    heads = ("model.head.", "model.aux_heads.aux.1.")
    layout = {k: v for k, v in to_reference_layout(original).items() if not k.startswith(heads)}
    for key, value in original.state_dict().items():
        if key.startswith("model.head."):
            layout[regression_head_to_reference(key, 0, False)] = value
        elif key.startswith("model.aux_heads.aux.head."):
            layout[regression_head_to_reference(key, 0, True, "model.aux_heads.aux.1")] = value
    assert "model.aux_heads.aux.1.head.0.0.1.running_var" in layout  # block 0's BatchNorm, nested
    said: list[str] = []
    translated = translate_reference_state(layout, original, said.append)
    assert original.load_state_dict(translated, strict=True) is not None
    assert "RegressionHead layers" in said[0]
