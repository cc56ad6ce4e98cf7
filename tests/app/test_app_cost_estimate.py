"""The memory and time estimate before Start: a real training step on the config's own batch, in a child
process; the epoch's step counts follow the data, memory grows with the batch, failures are messages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from geoft.app.cost_estimate import CostEstimate, estimate
from geoft.errors import ConfigError


def config_for(workspace: Path, batch_size: int, **trainer: Any) -> dict[str, Any]:
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    config["trainer"].update({"accelerator": "cpu", "precision": "32-true", **trainer})
    data = config["data"]["init_args"]
    data["batch_size"] = batch_size
    for key, value in list(data.items()):
        if key.endswith("data_root"):
            data[key] = str(workspace / value)
    return config


def test_estimate_measures_a_real_step_on_the_users_batch(tmp_path: Path, tiny_demo_workspace: Any) -> None:
    workspace = tiny_demo_workspace(tmp_path, {})
    cost = estimate(config_for(workspace, batch_size=3, precision="bf16-mixed"))
    assert (
        isinstance(cost, CostEstimate)
        and cost.accelerator == "cpu"
        and cost.memory_kind == "process peak RSS"
    )
    # 4 training chips in batches of 3 (the last, partial batch is dropped in training), 2 validation chips
    assert (cost.batch_size, cost.train_steps, cost.val_steps) == (3, 4 // 3, math.ceil(2 / 3))
    assert cost.train_step_s > 0 and cost.val_step_s > 0
    assert cost.epoch_s == pytest.approx(cost.train_step_s + cost.val_step_s)
    assert cost.peak_memory_mb > 100  # torch and the model are in the child's memory
    assert "per epoch on cpu (bf16-mixed)" in cost.summary()


def test_a_config_that_cannot_run_is_a_message(tmp_path: Path, tiny_demo_workspace: Any) -> None:
    workspace = tiny_demo_workspace(tmp_path, {})
    config = config_for(workspace, batch_size=1)
    config["data"]["init_args"]["train_data_root"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="(?s)could not measure the config: .*nowhere"):
        estimate(config)
    config = config_for(workspace, batch_size=1, precision="transformer-engine")
    with pytest.raises(ConfigError, match="32-true, bf16-mixed or 16-mixed"):
        estimate(config)


def test_train_page_estimates_the_chosen_setup(
    tmp_path: Path, tiny_demo_workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    workspace = tiny_demo_workspace(tmp_path / "ws", {})
    monkeypatch.setenv("GEOFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEOFT_DATA_ROOTS", str(workspace))
    monkeypatch.delenv("GEOFT_APP_PASSWORD", raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "pages/3_Train.py"), default_timeout=120)
    at.session_state["geoft_config"] = config_for(workspace, batch_size=2)
    at.run()
    next(b for b in at.button if b.key == "train_estimate").click().run()
    shown = "\n".join(str(i.value) for i in [*at.info, *at.error, *at.warning])
    assert "per epoch on cpu" in shown and "at batch size" in shown and "epochs: about" in shown, shown
    assert not at.exception
