"""Model: the task's presets, backbone and weights, necks, decoder or detector, head, the data options;
every config checked before use."""

from pathlib import Path

import streamlit as st

from geoft.app.backbone_choice import (
    band_argument,
    default_input_bands,
    describe,
    grouped_names,
    has_published_weights,
    label,
    registry_names,
)
from geoft.app.data_summary import (
    canonical_band_names,
    class_values,
    datamodule_paths,
    dataset_kind,
    default_rgb,
    load_dataset_meta,
    suggested_ignore_index,
)
from geoft.app.form_from_config import apply_form, fill_form, loaded_caption, widget_fill
from geoft.app.forms import (
    APP_KINDS,
    DETECTION_FRAMEWORKS,
    LOSSES,
    TASK_PRESETS,
    DataChoice,
    ModelChoice,
    TrainChoice,
    band_statistics,
    build_config,
    config_from_yaml,
    config_to_yaml,
)
from geoft.app.fusion_panel import fitting_options, fusion_method, modality_inputs
from geoft.app.modality_layout import detect_modalities, reads_modalities
from geoft.app.paths import confine
from geoft.app.task_files import CLASSIFICATION_KINDS, image_level_files
from geoft.app.task_panels import segmentation_pairing
from geoft.app.ui import guarded, setup_page, upload_limit_caption
from geoft.app.uploads import copy_upload, safe_filename
from geoft.app.widgets import show_check
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind

ctx = setup_page("Model")
st.title("Model")
roots = list(ctx.settings.allowed_roots)
st.session_state.update(st.session_state.pop("model_fill_pending", {}))  # an uploaded config's values


backbones, necks, decoders = st.cache_data(show_spinner=False)(registry_names)()
dataset = st.session_state.get("geoft_dataset")
meta, summary, paths, layout = {}, None, {}, None
if dataset:  # the Data page says what the labels are
    kind = dataset_kind(load_dataset_meta(ctx.settings.home, Path(dataset)))
    st.markdown(f"**Task:** {APP_KINDS[kind]} (as chosen on the Data page)")
else:
    kind = st.selectbox("Task", list(APP_KINDS), format_func=APP_KINDS.get, key="model_task")
if dataset:
    meta = load_dataset_meta(ctx.settings.home, Path(dataset))
    with guarded():
        found = image_level_files(kind, Path(dataset), meta)
        if found is not None:  # labels that are no rasters
            summary, paths, caption = found
            st.caption(caption)
        elif kind == TaskKind.REGRESSION:  # value rasters pair with the images as masks do
            summary = segmentation_pairing(Path(dataset), meta, read_classes=False)
            paths = datamodule_paths(summary)
        else:
            layout = detect_modalities(Path(dataset), meta.get("modalities"))
            layout = layout if layout is not None and reads_modalities(layout, meta) else None
            if layout is None:
                summary = segmentation_pairing(Path(dataset), meta)
                paths = datamodule_paths(summary)
else:
    st.info("No dataset chosen yet (Data page). You can still build and check a model.")

presets = TASK_PRESETS[kind]
preset_name = st.selectbox("Preset (known to work)", list(presets), key=f"model_preset_{kind.value}")
preset = presets[preset_name]
c1, c2 = st.columns(2)
backbone_options = backbones + [
    "timm_resnet18",
    "timm_resnet50",
    "timm_efficientnet_b0",
    "timm_convnext_tiny",
]
backbone_options = grouped_names(backbone_options)
if layout is not None:  # several modalities or dates: the fusion first, then the backbones that fit it
    fusion_method_name = fusion_method(layout)
    single_options = fitting_options(backbone_options, "concat_bands", layout, show=False)
    backbone_options = fitting_options(backbone_options, fusion_method_name, layout)
backbone = c1.selectbox(
    "Backbone (grouped by family)",
    backbone_options,
    index=backbone_options.index(preset.backbone) if preset.backbone in backbone_options else 0,
    format_func=label,
    key=f"model_backbone_{preset_name}",
)
backbone_other = c1.text_input("...or any timm model (timm_<name>)", key="model_timm")
backbone = backbone_other or backbone
c1.caption(describe(backbone))
decoder_options = decoders + ["smp_Unet", "smp_UnetPlusPlus", "smp_FPN", "smp_DeepLabV3Plus"]
detecting = kind == TaskKind.OBJECT_DETECTION
if detecting:
    framework = c2.selectbox(
        "Detector",
        DETECTION_FRAMEWORKS,
        index=DETECTION_FRAMEWORKS.index(preset.framework),
        key="model_framework",
        help="torchvision's detection framework around the backbone",
    )
    decoder = preset.decoder
else:
    framework = preset.framework
    decoder = c2.selectbox(
        "Decoder" if kind.pixelwise else "Decoder (before the image-level head)",
        decoder_options,
        index=decoder_options.index(preset.decoder) if preset.decoder in decoder_options else 0,
        key=f"model_decoder_{kind.value}",
    )
preset_necks = {n["name"]: n for n in preset.necks or []}
auto_necks = c2.checkbox(
    "Necks: add what the backbone needs automatically",
    value=preset.necks is None,
    key=f"model_auto_necks_{preset_name}",
)
neck_chain = (
    []
    if auto_necks
    else c2.multiselect(
        "Neck chain (in order)",
        sorted(set(necks) | set(preset_necks)),
        default=list(preset_necks),
        key=f"model_necks_{preset_name}",
    )
)
head_dropout = 0.0
if not detecting:
    head_dropout = c2.number_input(
        "Head dropout", 0.0, 0.9, float(preset.head_dropout), 0.05, key="model_head_dropout"
    )

st.subheader("Weights")
published = has_published_weights(backbone)
weight_options = [
    "Published weights (downloaded where online)",
    "Local checkpoint file",
    "Upload a checkpoint",
]
weight_options.append("None: random weights")
weights = st.radio(
    "Start from",
    weight_options,
    index=0 if published else 1,
    horizontal=True,
    key="model_weights",
    help="Fine-tuning needs the backbone's pretrained weights; random weights need far more data.",
)
backbone_args: dict = {}
pretrained = False
if weights == weight_options[0]:
    pretrained = True
    if not published:
        st.warning(
            f"{backbone} has no published weights: choose a checkpoint file.", icon=":material/warning:"
        )
elif weights == weight_options[1]:
    typed = st.text_input("Checkpoint path (inside the data folders)", key="model_ckpt_path")
    if typed:
        with guarded():
            backbone_args["ckpt_path"] = str(confine(typed, roots, must_exist=True))
elif weights == weight_options[2]:
    up = st.file_uploader(
        "Checkpoint (.pt, .pth, .ckpt, .safetensors)", type=["pt", "pth", "ckpt", "bin", "safetensors"]
    )
    upload_limit_caption("Larger checkpoints: copy them into a data root and type their path instead.")
    if up is not None:
        with guarded():
            dest = ctx.settings.uploads_dir / "checkpoints" / safe_filename(up.name)
            if not dest.is_file() or dest.stat().st_size != up.size:
                copy_upload(up, dest)  # in chunks: never a second whole copy in memory
            backbone_args["ckpt_path"] = str(dest)
            st.caption(f"Saved as uploads/checkpoints/{dest.name}; the check below shows what it loaded.")
else:
    st.warning("Random weights: the model learns from your chips alone.", icon=":material/warning:")

st.subheader("Data options")
modalities = None
if layout is not None:
    modalities = modality_inputs(layout, backbone, fusion_method_name, single_options)
    paths, bands = modalities.paths, modalities.concatenated
    dataset_bands = [b for modality_bands in modalities.dataset_bands.values() for b in modality_bands]
else:
    dataset_bands = list(
        meta.get("bands")
        or (canonical_band_names(summary.band_names) if summary else [])
        or ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
    )
    bands = st.multiselect(
        "Input bands, in the order the model reads them",
        dataset_bands,
        default=default_input_bands(dataset_bands, backbone),
        key="model_bands",
        help="Bands of the files, renamed to the names the models know (Sentinel-2 B4 is RED).",
    )
rgb_guess = [dataset_bands[i] for i in (meta.get("rgb_indices") or default_rgb(dataset_bands))]
r = st.columns(3)
rgb = [
    r[k].selectbox(
        f"{name} band (previews)",
        bands or dataset_bands,
        index=(bands or dataset_bands).index(rgb_guess[k]) if rgb_guess[k] in (bands or dataset_bands) else 0,
        key=f"model_rgb_{name}",
    )
    for k, name in enumerate(("Red", "Green", "Blue"))
]
i1, i2, i3, i4 = st.columns(4)
use_ignore, ignore_index, value_names = False, -1, None
if kind == TaskKind.SEGMENTATION:
    histogram = layout.class_histogram([]) if layout else summary.class_histogram if summary else {}
    suggested = meta.get("ignore_index", suggested_ignore_index(histogram))
    values = class_values(histogram, suggested)
    default_classes = meta.get("class_names") or [
        f"class {i}" for i in range(max(2, (max(values) + 1) if values else 2))
    ]
    classes_text = st.text_input("Classes (comma-separated)", ", ".join(default_classes), key="model_classes")
if kind in (TaskKind.SEGMENTATION, TaskKind.REGRESSION):
    suggested = suggested if kind == TaskKind.SEGMENTATION else meta.get("ignore_index")
    use_ignore = i1.checkbox("Ignore a label value", value=suggested is not None, key="model_use_ignore")
    ignore_index = i2.number_input(
        "Ignored label value",
        value=int(suggested if suggested is not None else -1),
        step=1,
        key="model_ignore_index",
        help="pixels with this label count in no loss and no metric (e.g. -1 or 255 for 'no data')",
        disabled=not use_ignore,
    )
if kind == TaskKind.REGRESSION:
    classes_text = ""
    st.caption("Predicts one value per pixel from the target rasters (paired as masks are).")
elif detecting:
    default_classes = summary.class_names if summary else ["object"]
    classes_text = st.text_input(
        "Object classes (comma-separated, no background)",
        ", ".join(default_classes),
        key="model_classes_detection",
        help="in the annotations' class order; the background class is added inside the detector",
    )
elif kind in CLASSIFICATION_KINDS:
    default_classes = summary.class_names if summary else ["class 0", "class 1"]
    classes_text = st.text_input(
        "Classes (comma-separated)", ", ".join(default_classes), key="model_classes_image"
    )
elif kind == TaskKind.SCALAR_REGRESSION:
    classes_text = ""
    value_names = summary.value_names if summary and len(summary.value_names) > 1 else None
    st.caption(
        "Predicts "
        + (", ".join(f"`{n}`" for n in value_names) if value_names else "one value per image")
        + " from the labels file."
    )
nodata = getattr(summary, "nodata", None)
replace_nodata = i3.checkbox(
    "Replace image nodata",
    value=nodata is not None,
    key="model_use_nodata",
    help=f"files declare nodata={nodata}",
)
no_data_replace = i4.number_input(
    "Nodata pixels become", value=0.0, key="model_nodata_value", disabled=not replace_nodata
)

st.subheader("Training")
c3, c4, c5, c6 = st.columns(4)
freeze_backbone = c3.checkbox("Freeze backbone", value=preset.freeze_backbone, key="model_freeze_backbone")
freeze_decoder = c3.checkbox(
    "Freeze necks" if detecting else "Freeze decoder", value=False, key="model_freeze_decoder"
)
lora = (
    False
    if detecting  # the detection factory has no adapters
    else c3.checkbox(
        "LoRA (train adapters only)",
        value=False,
        key="model_lora",
        help="Low-rank adapters on the backbone's attention (peft): far fewer trainable parameters and less memory",
    )
)
lora_rank = c3.number_input("LoRA rank", 1, 256, 8, key="model_lora_rank", disabled=not lora)
lora_alpha = c3.number_input("LoRA alpha", 1, 512, 16, key="model_lora_alpha", disabled=not lora)
loss = (
    c4.selectbox("Loss", LOSSES[kind], index=LOSSES[kind].index(preset.loss), key=f"model_loss_{kind.value}")
    if LOSSES[kind]
    else ""
)
optimizers = ["AdamW", "Adam", "SGD"]
optimizer = c5.selectbox("Optimizer", optimizers, key="model_opt")
lr = c6.number_input("Learning rate", value=preset.lr, format="%.5f", key="model_lr")

config = None
class_names = [c.strip() for c in classes_text.split(",") if c.strip()]
loaded = st.session_state.get("model_loaded")  # a config file filled the form: it is the base
if loaded is not None:
    with guarded():
        config = apply_form(
            loaded["config"],
            loaded["shown"],
            {
                "backbone": backbone,
                "decoder": decoder,
                "necks": None if auto_necks else list(neck_chain),
                "head_dropout": float(head_dropout),
                "backbone_pretrained": pretrained
                if weights in (weight_options[0], weight_options[-1])
                else None,
                "lora_rank": int(lora_rank) if lora else None,
                "lora_alpha": int(lora_alpha),
                "loss": loss,
                "optimizer": optimizer,
                "lr": float(lr),
                "freeze_backbone": freeze_backbone,
                "freeze_decoder": freeze_decoder,
                "class_names": class_names,
                "ignore_index": int(ignore_index) if use_ignore else None,
            },
        )
    st.caption(loaded["caption"])
else:  # the config is built from the form alone
    with guarded():
        model = ModelChoice(
            backbone=backbone,
            necks=None if auto_necks else [preset_necks.get(n, {"name": n}) for n in neck_chain],
            band_arg=band_argument(backbone),
            decoder=decoder,
            decoder_args=dict(preset.decoder_args) if decoder == preset.decoder else {},
            head_dropout=float(head_dropout),
            backbone_pretrained=pretrained,
            backbone_args=backbone_args,
            freeze_backbone=freeze_backbone,
            freeze_decoder=freeze_decoder,
            lora_rank=int(lora_rank) if lora else None,
            lora_alpha=int(lora_alpha),
            loss=loss,
            optimizer=optimizer,
            lr=float(lr),
            kind=kind,
            framework=framework,
            framework_args=dict(preset.framework_args),
            anchor_sizes=preset.anchor_sizes,
            fusion=modalities.fusion if modalities else None,
        )
        means, stds = band_statistics(meta.get("statistics"), dataset_bands, bands)
        data = DataChoice(
            root=str(dataset or ""),
            paths=paths,
            class_names=class_names,
            bands=bands,
            dataset_bands=dataset_bands,
            means=means,
            stds=stds,
            ignore_index=int(ignore_index) if use_ignore else None,
            no_data_replace=float(no_data_replace) if replace_nodata else None,
            rgb_bands=rgb,
            value_names=value_names,
            modality_bands=modalities.bands if modalities else None,
            modality_dataset_bands=modalities.dataset_bands if modalities else None,
        )
        config = build_config(data, model, TrainChoice())

if config is not None:
    b1, b2 = st.columns(2)
    if b1.button("Check model (config, weights, one forward pass)", key="model_check"):
        from geoft.app.model_check import dry_run

        with guarded():
            show_check(config, roots)  # problems listed; the forward pass below still runs
            with st.spinner("Building the model and running one batch..."):
                size = summary.size if summary and summary.size else (64, 64)
                report = dry_run(config, fallback_shape=(len(bands), *size))
            st.success(
                f"{report.total_params:,} parameters ({report.trainable_params:,} trainable). "
                f"Input {list(report.input_shape)} → "
                + (
                    f"{report.output_shape[0]} boxes in the first image (untrained)"
                    if detecting
                    else f"output {list(report.output_shape)}"
                )
                + f" in {report.seconds:.2f} s"
                + ("" if report.used_real_batch else " (random input: no data loaded)")
            )
    if b2.button("Use this config for training", type="primary", key="model_use"):
        with guarded():
            if show_check(config, roots):
                st.session_state["geoft_config"] = config
                st.session_state["geoft_config_dataset"] = dataset
                st.switch_page("pages/3_Train.py")

st.subheader("Full configuration")
uploaded = st.file_uploader("Upload a YAML config instead", type=["yaml", "yml"], key="model_upload")
upload_limit_caption()
if uploaded is not None:
    with guarded():
        if (loaded or {}).get("source") != (uploaded.name, uploaded.size):
            fill = fill_form(config_from_yaml(uploaded.getvalue()))
            fill_kind = fill.kind or kind
            if dataset and fill_kind != kind:
                raise ConfigError(
                    f"{uploaded.name} is a {fill_kind.value} config, the dataset chosen is {kind.value}",
                    hint="upload a config of the dataset's task, or choose its dataset on the Data page",
                )
            preset_key = f"model_preset_{fill_kind.value}"
            widgets = widget_fill(
                fill,
                fill_kind,
                st.session_state.get(preset_key) or next(iter(TASK_PRESETS[fill_kind])),
                {
                    "backbone": backbone_options,
                    "decoder": decoder_options,
                    "necks": sorted(set(necks) | set(preset_necks)),
                    "loss": LOSSES[fill_kind],
                    "optimizer": optimizers,
                },
                weight_options,
            )
            # widgets drawn in this run cannot change: their values are set at the top of the next run
            st.session_state["model_fill_pending"] = {
                **widgets.state,
                **({} if dataset else {"model_task": fill_kind}),
            }
            st.session_state["model_loaded"] = {
                "source": (uploaded.name, uploaded.size),
                "config": fill.config,
                "shown": widgets.shown,
                "caption": loaded_caption(uploaded.name, fill, widgets),
            }
            st.rerun()
        if config is not None and show_check(config, roots):
            st.session_state["geoft_config"] = config
            st.session_state.pop("geoft_config_dataset", None)
            st.success("Uploaded config checked and selected for training.")
elif loaded is not None:  # the file was removed: the form builds the config again
    st.session_state.pop("model_loaded")
    st.rerun()
if config is not None:
    text = config_to_yaml(config)
    st.code(text, language="yaml")
    st.download_button("Download config.yaml", text, file_name="config.yaml", key="model_download")
