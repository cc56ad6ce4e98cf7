"""Model: backbone, necks, decoder and head from the registries; training options; full YAML config."""

from pathlib import Path

import streamlit as st

from geoft.app.data_summary import datamodule_paths, load_dataset_meta, summarize
from geoft.app.forms import (
    PRESETS,
    DataChoice,
    ModelChoice,
    TrainChoice,
    build_config,
    config_from_yaml,
    config_to_yaml,
)
from geoft.app.ui import guarded, setup_page

ctx = setup_page("Model")
st.title("Model")


@st.cache_data(show_spinner=False)
def registry_names() -> tuple[list[str], list[str], list[str]]:
    from geoft.registry import BACKBONE_REGISTRY, DECODER_REGISTRY, NECK_REGISTRY

    return BACKBONE_REGISTRY.names(), NECK_REGISTRY.names(), DECODER_REGISTRY.names()


backbones, necks, decoders = registry_names()
dataset = st.session_state.get("geoft_dataset")
meta, summary = {}, None
if dataset:
    with guarded():
        summary = summarize(Path(dataset))
        meta = load_dataset_meta(ctx.settings.home, Path(dataset))
else:
    st.info("No dataset chosen yet (Data page). You can still build and check a model.")

preset_name = st.selectbox("Preset (known to work)", list(PRESETS), key="model_preset")
preset = PRESETS[preset_name]
c1, c2 = st.columns(2)
backbone_options = backbones + [
    "timm_resnet18",
    "timm_resnet50",
    "timm_efficientnet_b0",
    "timm_convnext_tiny",
]
backbone = c1.selectbox(
    "Backbone",
    backbone_options,
    index=backbone_options.index(preset.backbone) if preset.backbone in backbone_options else 0,
)
backbone_other = c1.text_input("...or any timm model (timm_<name>)", key="model_timm")
decoder_options = decoders + ["smp_Unet", "smp_UnetPlusPlus", "smp_FPN", "smp_DeepLabV3Plus"]
decoder = c2.selectbox(
    "Decoder",
    decoder_options,
    index=decoder_options.index(preset.decoder) if preset.decoder in decoder_options else 0,
)
auto_necks = c2.checkbox("Necks: add what the backbone needs automatically", value=preset.necks is None)
neck_chain = [] if auto_necks else c2.multiselect("Neck chain (in order)", necks, key="model_necks")
head_dropout = c2.number_input(
    "Head dropout", 0.0, 0.9, float(preset.head_dropout), 0.05, key="model_head_dropout"
)

band_names = list(
    meta.get("bands")
    or (summary.band_names if summary else [])
    or ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
)
bands = st.multiselect("Input bands", band_names, default=band_names, key="model_bands")
default_classes = meta.get("class_names") or ["class 0", "class 1"]
classes_text = st.text_input("Classes (comma-separated)", ", ".join(default_classes), key="model_classes")

c3, c4, c5, c6 = st.columns(4)
freeze_backbone = c3.checkbox("Freeze backbone", value=preset.freeze_backbone)
freeze_decoder = c3.checkbox("Freeze decoder", value=False)
loss = c4.selectbox("Loss", ["ce", "dice", "focal", "jaccard", "lovasz"], key="model_loss")
optimizer = c5.selectbox("Optimizer", ["AdamW", "Adam", "SGD"], key="model_opt")
lr = c6.number_input("Learning rate", value=preset.lr, format="%.5f", key="model_lr")

config = None
with guarded():
    model = ModelChoice(
        backbone=backbone_other or backbone,
        necks=None if auto_necks else [{"name": n} for n in neck_chain],
        band_arg="bands" if (backbone_other or backbone).startswith("prithvi") else "in_chans",
        decoder=decoder,
        decoder_args=dict(preset.decoder_args) if decoder == preset.decoder else {},
        head_dropout=float(head_dropout),
        freeze_backbone=freeze_backbone,
        freeze_decoder=freeze_decoder,
        loss=loss,
        optimizer=optimizer,
        lr=float(lr),
    )
    stats = meta.get("statistics") or {}
    data = DataChoice(
        root=str(dataset or ""),
        paths=datamodule_paths(summary) if summary else {},
        class_names=[c.strip() for c in classes_text.split(",") if c.strip()],
        bands=bands,
        means=stats.get("means"),
        stds=stats.get("stds"),
    )
    config = build_config(data, model, TrainChoice())

if config is not None:
    b1, b2 = st.columns(2)
    if b1.button("Check model (parameters + one forward pass)", key="model_check"):
        from geoft.app.model_check import dry_run

        with guarded(), st.spinner("Building the model and running one batch..."):
            size = summary.size if summary and summary.size else (64, 64)
            report = dry_run(config, fallback_shape=(len(bands), *size))
            st.success(
                f"{report.total_params:,} parameters ({report.trainable_params:,} trainable). "
                f"Input {list(report.input_shape)} → output {list(report.output_shape)} in {report.seconds:.2f} s"
                + ("" if report.used_real_batch else " (random input: no data loaded)")
            )
    if b2.button("Use this config for training", type="primary", key="model_use"):
        st.session_state["geoft_config"] = config
        st.session_state["geoft_config_dataset"] = dataset
        st.switch_page("pages/3_Train.py")

st.subheader("Full configuration")
uploaded = st.file_uploader("Upload a YAML config instead", type=["yaml", "yml"], key="model_upload")
if uploaded is not None:
    with guarded():
        config = config_from_yaml(uploaded.getvalue())
        st.session_state["geoft_config"] = config
        st.session_state.pop("geoft_config_dataset", None)
        st.success("Uploaded config checked and selected for training.")
if config is not None:
    text = config_to_yaml(config)
    st.code(text, language="yaml")
    st.download_button("Download config.yaml", text, file_name="config.yaml", key="model_download")
