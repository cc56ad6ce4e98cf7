"""The Model page: an uploaded YAML fills the form, is shown unchanged, and one edit changes only its key."""

from __future__ import annotations

from pathlib import Path

import yaml
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


def _upload() -> dict:
    config = yaml.safe_load((REPO / "configs" / "demo_prithvi_upernet.yaml").read_text())
    args = config["model"]["init_args"]
    args.update(lr=2.0e-4, optimizer="Adam", loss="dice", freeze_decoder=True)
    args["model_args"]["peft_config"] = {"method": "LORA", "peft_config_kwargs": {"r": 4, "lora_alpha": 8}}
    return config


def test_uploaded_yaml_fills_the_form_and_round_trips(home: Path):
    upload = _upload()
    at = AppTest.from_file(str(REPO / "pages" / "2_Model.py"), default_timeout=120).run()
    at.file_uploader(key="model_upload").set_value(
        ("mine.yaml", yaml.safe_dump(upload).encode(), "text/yaml")
    )
    at.run()
    assert not at.exception, at.exception
    assert at.number_input(key="model_lr").value == 2.0e-4
    assert at.selectbox(key="model_opt").value == "Adam"
    assert at.selectbox(key="model_loss_segmentation").value == "dice"
    assert at.checkbox(key="model_freeze_decoder").value is True
    assert at.checkbox(key="model_lora").value is True and at.number_input(key="model_lora_rank").value == 4
    assert at.text_input(key="model_classes").value == "water, vegetation, bare soil, built-up, cloud"
    captions = "\n".join(c.value for c in at.caption)
    assert "mine.yaml" in captions and "model.init_args.tiled_inference_parameters" in captions
    assert yaml.safe_load(at.code[-1].value) == upload

    at.number_input(key="model_lr").set_value(5.0e-4).run()
    assert not at.exception, at.exception
    edited = yaml.safe_load(at.code[-1].value)
    assert edited["model"]["init_args"].pop("lr") == 5.0e-4
    upload["model"]["init_args"].pop("lr")
    assert edited == upload
