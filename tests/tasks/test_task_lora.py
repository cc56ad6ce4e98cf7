"""LoRA through peft: only adapters, decoder and head train; resume; exports merge the adapters."""

from __future__ import annotations

import builtins
import logging
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from geoft.errors import ConfigError
from geoft.export import export_model
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.models.peft import SplitQKV, has_adapters, merged_adapters, parameter_counts
from geoft.tasks import SemanticSegmentationTask

LORA = {"method": "LORA", "peft_config_kwargs": {"r": 4, "lora_alpha": 8}}
PRITHVI_ARGS: dict[str, Any] = {
    "backbone": "prithvi_eo_tiny",
    "backbone_bands": ["BLUE", "GREEN", "RED"],
    "backbone_num_frames": 1,
    "decoder": "UperNetDecoder",
    "decoder_channels": 16,
    "num_classes": 3,
}


def _model(backbone_args: dict[str, Any] | None = None, peft: dict[str, Any] | None = LORA) -> Any:
    args = dict(backbone_args or PRITHVI_ARGS)
    return EncoderDecoderFactory().build_model("segmentation", peft_config=peft, **args)


def _train_steps(model: torch.nn.Module, steps: int = 3, size: int = 32, channels: int = 3) -> None:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, channels, size, size, generator=g)
    y = (x[:, 0] > 0).long()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x).output, y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _split(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    base = {k: v for k, v in state.items() if k.startswith("encoder.") and "lora_" not in k}
    lora = {k: v for k, v in state.items() if "lora_" in k}
    return base, lora


def test_only_adapters_decoder_and_head_train_and_the_base_stays_fixed() -> None:
    torch.manual_seed(0)
    model = _model()
    assert has_adapters(model.encoder)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    encoder_trainable = {n for n in trainable if n.startswith("encoder.")}
    assert encoder_trainable and all("lora_" in n for n in encoder_trainable)
    assert any(n.startswith("decoder.") for n in trainable) and any(n.startswith("head.") for n in trainable)
    # the reference's checkpoint layout: the backbone wrapped by peft.get_peft_model
    assert any(
        k.startswith("encoder.base_model.model.blocks.0.attn.qkv.lora_A.default") for k in model.state_dict()
    )

    base_before, lora_before = _split(model)
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    _train_steps(model)
    base_after, lora_after = _split(model)
    assert base_before.keys() == base_after.keys()
    for key in base_before:
        assert torch.equal(base_before[key], base_after[key]), f"frozen base weight {key} changed"
    assert any(not torch.equal(lora_before[k], lora_after[k]) for k in lora_before), "adapters did not train"
    assert any(not torch.equal(v, model.decoder.state_dict()[k]) for k, v in decoder_before.items())

    full = _model(peft=None)
    lora_trainable, _ = parameter_counts(model)
    full_trainable, _ = parameter_counts(full)
    assert lora_trainable < full_trainable


def test_the_log_says_how_many_parameters_train(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="geoft"):
        _model()
    assert any(
        "trainable parameters" in r.getMessage() and "frozen" in r.getMessage() for r in caplog.records
    )


FAMILIES: dict[str, tuple[dict[str, Any], int, int]] = {  # model_args, input channels, chip size
    "timm_vit": (
        {"backbone": "timm_vit_tiny_patch16_224", "backbone_in_chans": 3, "backbone_img_size": 32},
        3,
        32,
    ),
    "timm_swin": (
        {
            "backbone": "timm_swin_tiny_patch4_window7_224",
            "backbone_in_chans": 3,
            "backbone_img_size": 32,
            "backbone_window_size": 4,
        },
        3,
        32,
    ),
    "prithvi_swin": (
        {
            "backbone": "prithvi_swin_B",
            "backbone_depths": [1, 1, 1, 1],
            "backbone_bands": ["BLUE", "GREEN", "RED"],
        },
        3,
        64,
    ),
    # torchvision's Swin reads its attention weights directly: LoRA goes on the MLP linears
    "satlas_swin": ({"backbone": "satlas_swin_t_sentinel2_si_ms"}, 9, 64),
    "terramind": (
        {"backbone": "terramind_v1_tiny", "backbone_modalities": ["S2L2A"], "backbone_depth": 2},
        12,
        32,
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lora_trains_reloads_and_exports_on_every_family(
    family: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backbone_args, channels, size = FAMILIES[family]
    args = {**backbone_args, "decoder": "FCNDecoder", "decoder_channels": 8, "num_classes": 3}
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="geoft"):
        model = _model(args)
    assert any("trainable parameters" in r.getMessage() for r in caplog.records)
    encoder_trainable = [n for n, p in model.encoder.named_parameters() if p.requires_grad]
    assert encoder_trainable and all("lora_" in n for n in encoder_trainable)
    base_before, lora_before = _split(model)
    _train_steps(model, steps=2, size=size, channels=channels)
    base_after, lora_after = _split(model)
    for key in base_before:
        assert torch.equal(base_before[key], base_after[key]), f"frozen base weight {key} changed"
    # every adapter ran: lora_B starts at zero and moves only when its layer is called
    unchanged = [k for k in lora_before if "lora_B" in k and torch.equal(lora_before[k], lora_after[k])]
    assert not unchanged, f"adapters that never trained: {unchanged[:3]}"

    model.eval()
    x = torch.randn(1, channels, size, size)
    reloaded = _model(args).eval()
    reloaded.load_state_dict(model.state_dict(), strict=True)  # the checkpoint holds the adapters
    with torch.no_grad():
        expected = model(x).output
        torch.testing.assert_close(reloaded(x).output, expected)
    scripted = torch.jit.load(str(export_model(model, tmp_path / "m.pt", x, format="torchscript")))
    assert not any("lora" in k for k in scripted.state_dict())  # merged
    torch.testing.assert_close(scripted(x), expected, atol=1e-4, rtol=0)


def test_replace_qkv_splits_the_fused_projection_without_changing_it() -> None:
    fused = torch.nn.Linear(8, 24)
    split = SplitQKV(fused)
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(split(x), fused(x))
    model = _model(peft={"method": "LORA", "replace_qkv": "qkv", "peft_config_kwargs": {"r": 2}})
    keys = list(model.state_dict())
    assert any(".attn.qkv.q_linear.lora_A." in k for k in keys)
    assert any(".attn.qkv.v_linear.base_layer.weight" in k for k in keys)


def test_export_merges_the_adapters_and_equals_the_unmerged_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _model()
    _train_steps(model)  # lora_B starts at zero: train so the adapters matter
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x).output
        merged = merged_adapters(model)
        assert not has_adapters(merged) and has_adapters(model)  # the original keeps its adapters
        torch.testing.assert_close(merged(x).output, expected, atol=1e-4, rtol=0)
    path = export_model(model, tmp_path / "lora.onnx", x, format="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert abs(onnx_out - expected.numpy()).max() < 1e-4
    ts = export_model(model, tmp_path / "lora.pt", x, format="torchscript")
    scripted = torch.jit.load(str(ts))
    torch.testing.assert_close(scripted(x), expected, atol=1e-4, rtol=0)


def test_resume_from_a_checkpoint_keeps_adapters_and_frozen_base(tk: Any, tmp_path: Path) -> None:
    def task() -> SemanticSegmentationTask:
        return SemanticSegmentationTask(
            model_factory="EncoderDecoderFactory",
            model_args={**PRITHVI_ARGS, "peft_config": LORA},
            lr=1e-2,
        )

    dm = tk.DataModule("segmentation", size=32, n=8)
    first = task()
    base_start, _ = _split(first.model)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    tk.trainer(max_epochs=1, enable_checkpointing=True, callbacks=[ckpt], default_root_dir=tmp_path).fit(
        first, dm
    )
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)["state_dict"]
    assert any("lora_A" in k for k in saved)

    resumed = task()
    tk.trainer(max_epochs=2, enable_checkpointing=True, default_root_dir=tmp_path).fit(
        resumed, dm, ckpt_path=str(tmp_path / "last.ckpt")
    )
    assert resumed.current_epoch == 2
    base_end, lora_end = _split(resumed.model)
    for key in base_start:
        assert torch.equal(base_start[key], base_end[key]), key
    assert all(p.requires_grad == ("lora_" in n) for n, p in resumed.model.encoder.named_parameters())


def test_bad_peft_configs_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        _model(peft={"method": "LORA", "rank": 4})
    with pytest.raises(ConfigError, match="not a peft method"):
        _model(peft={"method": "NOT_A_METHOD"})
    with pytest.raises(ConfigError, match="no layer named 'qkv_fused'"):
        _model(peft={"method": "LORA", "replace_qkv": "qkv_fused"})
    satlas = {**FAMILIES["satlas_swin"][0], "decoder": "FCNDecoder", "num_classes": 3}
    with pytest.raises(ConfigError, match="would never train"):
        _model(satlas, peft={"method": "LORA", "peft_config_kwargs": {"target_modules": ["qkv"]}})
    with pytest.raises(ConfigError, match="reads its weight directly"):
        _model(satlas, peft={"method": "LORA", "replace_qkv": "qkv"})
    with pytest.raises(ConfigError, match="freeze_backbone"):
        _model().freeze_encoder()

    real_import = builtins.__import__

    def no_peft(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "peft" or name.startswith("peft."):
            raise ModuleNotFoundError("No module named 'peft'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(ConfigError, match="pip install"):
        _model()
