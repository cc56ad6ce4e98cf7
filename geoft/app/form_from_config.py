"""Fill the Model page's form from a loaded config (geoft or TerraTorch layout), and apply the form's
edits back onto that config.

The loaded config is the base: building from the unchanged form gives it back as it was, and a changed
widget rewrites only its own key(s). Keys the form cannot show are named (:attr:`FormFill.kept`), never
dropped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from geoft.app.task_builders import task_kind_of
from geoft.config.dotted import set_dotted
from geoft.task_kinds import TaskKind

_TASK = ("model", "init_args")
_ARGS = (*_TASK, "model_args")
_LORA = (*_ARGS, "peft_config", "peft_config_kwargs")
_DATA = ("data", "init_args")

# form field -> the config keys it reads (the first) and writes (all)
FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "backbone": ((*_ARGS, "backbone"),),
    "backbone_pretrained": ((*_ARGS, "backbone_pretrained"),),
    "decoder": ((*_ARGS, "decoder"),),
    "necks": ((*_ARGS, "necks"),),
    "head_dropout": ((*_ARGS, "head_dropout"),),
    "lora_rank": ((*_LORA, "r"),),
    "lora_alpha": ((*_LORA, "lora_alpha"),),
    "loss": ((*_TASK, "loss"),),
    "optimizer": ((*_TASK, "optimizer"),),
    "lr": ((*_TASK, "lr"),),
    "freeze_backbone": ((*_TASK, "freeze_backbone"),),
    "freeze_decoder": ((*_TASK, "freeze_decoder"),),
    "class_names": ((*_TASK, "class_names"), (*_DATA, "class_names")),
    "ignore_index": ((*_TASK, "ignore_index"), (*_DATA, "ignore_index")),
}
# read from the config by the Train page's own widgets
TRAIN_PAGE_KEYS = ("trainer.max_epochs", "trainer.precision", "data.init_args.batch_size")
# sections whose keys are listed one by one when the form does not hold them
_LISTED = (_ARGS, _TASK, _DATA, ("trainer",), ("data",), ("model",))


@dataclass
class FormFill:
    """What a config puts into the form: the task kind, one value per form field, and what stays outside."""

    kind: TaskKind | None
    values: dict[str, Any]
    config: dict[str, Any]  # the loaded config, the base the form's edits apply to
    kept: list[str] = field(default_factory=list)  # dotted keys kept from the file, not in the form


def _get(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``path`` to ``value``; ``None`` removes the key."""
    if value is not None:
        set_dotted(config, ".".join(path), value)
    elif isinstance(parent := _get(config, path[:-1]), dict):
        parent.pop(path[-1], None)


def _short(name: Any) -> Any:
    """``torch.optim.AdamW`` -> ``AdamW`` (the form's names); other values as they are."""
    return name.rsplit(".", 1)[-1] if isinstance(name, str) else name


def fill_form(config: dict[str, Any]) -> FormFill:
    """The form's values of ``config`` and the dotted keys the form cannot show."""
    values = {name: copy.deepcopy(_get(config, paths[0])) for name, paths in FIELDS.items()}
    values["optimizer"] = _short(values["optimizer"])
    necks = values["necks"]
    values["necks"] = None if necks is None else [n.get("name") if isinstance(n, dict) else n for n in necks]
    if values["class_names"] is None:
        values["class_names"] = copy.deepcopy(_get(config, FIELDS["class_names"][1]))
    return FormFill(task_kind_of(config), values, copy.deepcopy(config), _kept_keys(config))


def _kept_keys(config: dict[str, Any]) -> list[str]:
    held = {path[:4] for paths in FIELDS.values() for path in paths}
    held |= {tuple(k.split(".")) for k in TRAIN_PAGE_KEYS}
    held |= {("model", "class_path"), ("data", "class_path"), ("model", "init_args", "model_factory")}
    kept = [key for key in config if key not in ("model", "data", "trainer")]
    for section in _LISTED:
        node = _get(config, section)
        if not isinstance(node, dict):
            continue
        for key in node:
            path = (*section, key)
            if path in held or path in _LISTED:
                continue
            kept.append(".".join(path))
    # keys of LoRA's settings other than its rank and alpha
    for key in _get(config, _LORA) or {}:
        if key not in ("r", "lora_alpha"):
            kept.append(".".join((*_LORA, key)))
    for key in _get(config, _LORA[:-1]) or {}:
        if key not in ("method", "peft_config_kwargs"):
            kept.append(".".join((*_LORA[:-1], key)))
    return kept


def apply_form(base: dict[str, Any], filled: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the form fields the user changed (``current`` differs from ``filled``) written in."""
    config = copy.deepcopy(base)
    for name, paths in FIELDS.items():
        if name not in current or name not in filled or current[name] == filled[name]:
            continue
        if name == "lora_alpha" and not current.get("lora_rank"):
            continue
        value = copy.deepcopy(current[name])
        if name == "necks" and value is not None:  # a neck the file had keeps its arguments
            known = {n.get("name"): n for n in _get(base, paths[0]) or [] if isinstance(n, dict)}
            value = [copy.deepcopy(known.get(n, {"name": n})) for n in value]
        if name == "lora_rank" and not value:
            _set(config, _ARGS + ("peft_config",), None)
            continue
        if name == "lora_rank":
            _set(config, (*_LORA[:-1], "method"), _get(config, (*_LORA[:-1], "method")) or "LORA")
            _set(config, (*_LORA, "lora_alpha"), current.get("lora_alpha", 16))
        # keys written in both task and datamodule go where the file had them (the task's where neither)
        where = [p for p in paths if _get(base, p) is not None] or [paths[0]]
        for path in where:
            _set(config, path, value)
        if name == "class_names" and value is not None:
            for section in (_ARGS, _DATA):
                if _get(config, (*section, "num_classes")) is not None:
                    _set(config, (*section, "num_classes"), len(value))
    return config


@dataclass
class WidgetFill:
    """The Model page's widget values of a :class:`FormFill`: ``state`` by widget key, ``shown`` the form
    values those widgets will hold (what edits are compared against), ``hidden`` fields no widget can show."""

    state: dict[str, Any]
    shown: dict[str, Any]
    hidden: list[str]


def widget_fill(
    fill: FormFill,
    kind: TaskKind,
    preset_name: str,
    options: dict[str, list[str]],
    weight_options: list[str],
) -> WidgetFill:
    """Widget keys of the Model page (as it names them for ``kind`` and ``preset_name``) set to ``fill``'s
    values; ``options`` are the page's choices per field (backbone, decoder, necks, loss, optimizer)."""
    v, state, shown, hidden = fill.values, {}, {}, []

    def show(name: str, key: str, value: Any, widget_value: Any = None) -> None:
        state[key] = value if widget_value is None else widget_value
        shown[name] = value

    if v["backbone"] in options["backbone"]:
        show("backbone", f"model_backbone_{preset_name}", v["backbone"])
        state["model_timm"] = ""
    elif v["backbone"]:
        show("backbone", "model_timm", v["backbone"])
    if v["decoder"] in options["decoder"]:
        show("decoder", f"model_decoder_{kind.value}", v["decoder"])
    if v["necks"] is None or all(n in options["necks"] for n in v["necks"]):
        state[f"model_auto_necks_{preset_name}"] = v["necks"] is None
        if v["necks"] is not None:
            state[f"model_necks_{preset_name}"] = list(v["necks"])
        shown["necks"] = v["necks"]
    show("head_dropout", "model_head_dropout", float(v["head_dropout"] or 0.0))
    if (
        v["backbone_pretrained"] is not None
        or "model.init_args.model_args.backbone_ckpt_path" not in fill.kept
    ):
        show(
            "backbone_pretrained",
            "model_weights",
            bool(v["backbone_pretrained"]),
            weight_options[0] if v["backbone_pretrained"] else weight_options[-1],
        )
    state["model_lora"] = bool(v["lora_rank"])
    shown["lora_rank"] = int(v["lora_rank"]) if v["lora_rank"] else None
    state["model_lora_rank"] = int(v["lora_rank"] or 8)
    show("lora_alpha", "model_lora_alpha", int(v["lora_alpha"] or 16))
    if v["loss"] in options["loss"]:
        show("loss", f"model_loss_{kind.value}", v["loss"])
    if v["optimizer"] in options["optimizer"]:
        show("optimizer", "model_opt", v["optimizer"])
    if isinstance(v["lr"], (int, float)):
        show("lr", "model_lr", float(v["lr"]))
    show("freeze_backbone", "model_freeze_backbone", bool(v["freeze_backbone"]))
    show("freeze_decoder", "model_freeze_decoder", bool(v["freeze_decoder"]))
    classes_key = CLASSES_KEYS.get(kind)
    if classes_key and v["class_names"]:
        show("class_names", classes_key, list(v["class_names"]), ", ".join(map(str, v["class_names"])))
    if kind in (TaskKind.SEGMENTATION, TaskKind.REGRESSION):
        state["model_use_ignore"] = v["ignore_index"] is not None
        if v["ignore_index"] is not None:
            state["model_ignore_index"] = int(v["ignore_index"])
        shown["ignore_index"] = v["ignore_index"]
    hidden = [name for name in FIELDS if name not in shown and v.get(name) is not None]
    return WidgetFill(state=state, shown=shown, hidden=hidden)


# the classes' text input of each kind on the Model page
CLASSES_KEYS = {
    TaskKind.SEGMENTATION: "model_classes",
    TaskKind.OBJECT_DETECTION: "model_classes_detection",
    TaskKind.CLASSIFICATION: "model_classes_image",
    TaskKind.MULTILABEL_CLASSIFICATION: "model_classes_image",
}


def loaded_caption(name: str, fill: FormFill, widgets: WidgetFill) -> str:
    """The page's line under the form: which file filled it and what stayed outside the form."""
    outside = fill.kept + [".".join(FIELDS[f][0]) for f in widgets.hidden]
    text = f"The form shows {name}; unchanged fields keep the file's values."
    if outside:
        text += " Kept from the file, not in the form: " + ", ".join(outside) + "."
    return text + " Epochs, batch size and precision are set on the Train page."
