"""The whole journey with real data in headless Chromium, no YAML edited and no request leaving the machine:
Sen1Floods11 tiles with their own names, uploaded as a zip; the ignore value and a pretrained checkpoint
(built in the published Prithvi layout) set in the forms; trained; predicted onto the map."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest
import torch

from geoft.app.run_store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.real_data]


def prithvi_tiny_checkpoint(path: Path) -> Path:
    """A checkpoint laid out like the published Prithvi files: ``encoder.*`` (pos_embed for a 224 px,
    one-frame grid, class token first) and the MAE ``decoder.*`` that fine-tuning drops. Random values."""
    from geoft.models.backbones.prithvi import PRITHVI_VARIANTS, build_prithvi
    from geoft.models.backbones.prithvi_embed import sincos_3d

    cfg = PRITHVI_VARIANTS["prithvi_eo_tiny"]
    encoder = build_prithvi("prithvi_eo_tiny", img_size=32)
    torch.manual_seed(0)
    state = {f"encoder.{k}": torch.randn_like(v) * 0.02 for k, v in encoder.state_dict().items()}
    table = sincos_3d(cfg.embed_dim, (1, 14, 14))
    state["encoder.pos_embed"] = torch.cat([torch.zeros(1, cfg.embed_dim), table]).unsqueeze(0)
    d = 64
    state.update(
        {
            "decoder.decoder_embed.weight": torch.randn(d, cfg.embed_dim),
            "decoder.decoder_embed.bias": torch.randn(d),
            "decoder.mask_token": torch.randn(1, 1, d),
            "decoder.decoder_pos_embed": torch.randn(1, 1 + 14 * 14, d),
            "decoder.decoder_norm.weight": torch.randn(d),
            "decoder.decoder_pred.weight": torch.randn(16 * 16 * 6, d),
        }
    )
    torch.save(state, path)
    return path


def _zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return out


def _wait_for(predicate, timeout_s: float, what: str, server=None) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    raise AssertionError(
        f"timed out after {timeout_s:.0f} s waiting for {what}\n{server.log_text()[-3000:] if server else ''}"
    )


def _no_traceback(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("Something unexpected went wrong").count() == 0


def _leaflet_image_layers(page) -> int:
    return sum(frame.locator(".leaflet-image-layer").count() for frame in page.frames)


def test_sen1floods11_zip_to_map(page_and_traffic, sen1floods11_tiles, tmp_path, shoot, settle, publish):
    page, traffic, server = page_and_traffic
    upload = _zip_folder(sen1floods11_tiles, tmp_path / "sen1floods11_tiles.zip")
    checkpoint = prithvi_tiny_checkpoint(tmp_path / "Prithvi_EO_tiny.pt")

    # Data: upload the zip; the native names pair by their suffixes, the -1 labels are seen as 'no data'
    page.goto(f"{server.url}/Data")
    settle(page)
    page.get_by_text("Upload a zip").click()
    settle(page)
    zip_uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Zip of the dataset folder")
    zip_uploader.wait_for(timeout=60_000)
    zip_uploader.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Extract").click()
    page.get_by_text("Extracted to").wait_for(timeout=120_000)
    settle(page)
    _no_traceback(page)
    assert "uploads/sen1floods11_tiles/" not in page.inner_text("[data-testid='stMain']")  # not doubled
    assert page.get_by_role("textbox", name="Image suffix (before the extension)").input_value() == "_S2Hand"
    assert (
        page.get_by_role("textbox", name="Label suffix (before the extension)").input_value() == "_LabelHand"
    )
    assert page.get_by_text("looks like 'no data'").count() == 1
    page.get_by_role("button", name="Compute statistics").click()
    page.get_by_text("mean").first.wait_for(timeout=120_000)
    settle(page)
    shoot(page, "real-1-data")

    # Model: pretrained checkpoint uploaded, ignore value pre-set, class names typed
    page.goto(f"{server.url}/Model")
    page.get_by_text("Full configuration").wait_for(timeout=90_000)
    settle(page)
    assert page.get_by_role("spinbutton", name="Ignored label value").input_value() == "-1"
    page.get_by_text("Upload a checkpoint").click()
    settle(page)
    # the click reruns the page: wait for the checkpoint uploader itself, not the first file input found
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Checkpoint (.pt")
    uploader.wait_for(timeout=60_000)
    uploader.locator("input[type=file]").set_input_files(str(checkpoint))
    page.get_by_text("Saved as uploads/checkpoints/").wait_for(timeout=60_000)
    classes = page.get_by_role("textbox", name="Classes (comma-separated)")
    classes.fill("not water, water")
    classes.press("Enter")
    settle(page)
    page.get_by_role("button", name="Check model (config, weights, one forward pass)").click()
    page.get_by_text("parameters (").wait_for(timeout=240_000)
    settle(page)
    _no_traceback(page)
    assert page.get_by_text("Weights loaded.").count() >= 1  # the load report of the checkpoint
    assert page.get_by_text("starts from random weights").count() == 0
    shoot(page, "real-2-model")
    page.get_by_role("button", name="Use this config for training").click()

    # Train: a tiny budget
    page.get_by_role("button", name="Start training").wait_for(timeout=240_000)
    settle(page)
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("3")
    epochs.press("Tab")
    settle(page)
    page.get_by_role("button", name="Start training").click()
    store = RunStore(server.home / "runs" / "runs.sqlite")
    _wait_for(lambda: store.list() != [], 240, "the run to be queued", server)
    _wait_for(lambda: not store.list()[0].is_active, 600, "training to finish", server)
    run = store.list()[0]
    assert run.status == "completed", f"{run.status}: {run.error}\n{run.log_path.read_text()[-3000:]}"
    config_text = run.config_path.read_text()
    assert "ignore_index: -1" in config_text and "Prithvi_EO_tiny.pt" in config_text
    page.get_by_text("Validation: best and last").wait_for(timeout=120_000)
    settle(page)
    shoot(page, "real-3-trained")
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert sidebar.index("Home") < sidebar.index("Data") and "app" not in sidebar.split(), sidebar

    # Predict: a tile of the run's dataset onto the map, with the best checkpoint
    page.goto(f"{server.url}/Predict")
    page.get_by_role("button", name="Predict", exact=True).wait_for(timeout=120_000)
    settle(page)
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_role("button", name="Download prediction (GeoTIFF)").wait_for(timeout=240_000)
    _wait_for(lambda: _leaflet_image_layers(page) >= 2, 120, "the map overlays", server)
    page.wait_for_timeout(1500)
    _no_traceback(page)
    shoot(page, "real-4-map")
    assert traffic.external == [], f"requests left the machine: {traffic.external}"
    publish("real-1-data", "real-2-model", "real-3-trained", "real-4-map")
