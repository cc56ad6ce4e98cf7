"""Similar chips: footprints on the map, the chip under a click, its nearest neighbours; the page end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from geoft.app.maps import external_urls, leaflet_urls
from geoft.app.similarity import (
    ChipEmbeddings,
    chip_at,
    click_selection,
    embed_run_chips,
    embeddings_path,
    load_chip_embeddings,
    similar_chips,
    similarity_map,
)
from geoft.datasets.detection_demo import generate_detection_chips
from geoft.embeddings import EmbeddingTable, write_embeddings
from geoft.embeddings_search import nearest_neighbours
from tests.app.app_detection_run import RUN_ID, train_detection_run, use_home

REPO = Path(__file__).resolve().parents[2]
JS, CSS = leaflet_urls()


def _table(tmp_path: Path, n: int = 4) -> tuple[EmbeddingTable, list]:
    """Chips side by side in UTM 32N (320 m wide) with hand-made vectors: chip 0 is nearest chip 2."""
    import torch

    truth = generate_detection_chips(tmp_path, n=n, size=32, seed=0)
    vectors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]][:n])
    table = EmbeddingTable()
    table.add(
        vectors, [str(t.image) for t in truth], [t.transform for t in truth], ["EPSG:32632"] * n, (32, 32)
    )
    return table, truth


def _centre_latlon(chip) -> tuple[float, float]:
    from pyproj import Transformer

    a, _, c, _, e, f = chip.transform
    lon, lat = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True).transform(
        c + 16 * a, f + 16 * e
    )
    return lat, lon


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_a_click_selects_the_chip_under_it(tmp_path: Path, suffix: str) -> None:
    table, truth = _table(tmp_path)
    chips = load_chip_embeddings(write_embeddings(table, tmp_path / f"e{suffix}"))
    assert chips.footprints is not None and str(chips.footprints.crs) == "EPSG:4326"
    for i, chip in enumerate(truth):
        assert chip_at(chips, *_centre_latlon(chip)) == i
    lat, lon = _centre_latlon(truth[0])
    assert chip_at(chips, lat + 1.0, lon) is None  # north of every chip
    returned = {"last_object_clicked": {"lat": lat, "lng": lon}}
    assert click_selection(chips, returned, None) == (0, (lat, lon))
    assert click_selection(chips, returned, (lat, lon)) == (None, (lat, lon))  # the same click again
    assert click_selection(chips, None, (1.0, 2.0)) == (None, (1.0, 2.0))


def test_neighbours_and_the_map_highlight_them(tmp_path: Path) -> None:
    table, _ = _table(tmp_path)
    chips = load_chip_embeddings(write_embeddings(table, tmp_path / "e.parquet"))
    hits = similar_chips(chips, 0, k=2)
    assert [h.index for h in hits] == [2, 1]  # 1 and 3 tie at 0: row order
    assert hits[0].similarity == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert len(similar_chips(chips, 0, k=10)) == 3  # never more than the other chips
    m = similarity_map(chips, 0, hits[:1], JS, CSS)
    assert external_urls(m) == []
    html = m.get_root().render()
    assert re.findall(r"https?://", html.replace("http-equiv", "")) == []
    roles = re.findall(r'"role": "(\w+)"', html)
    assert roles == ["selected", "other", "neighbour", "other"]
    assert "#dc143c" in html and "#ff8c00" in html and "geoft-legend" in html
    assert "L.imageOverlay" not in html
    with_images = similarity_map(chips, 0, hits[:1], JS, CSS, rgb_bands=[0, 1, 2])
    assert external_urls(with_images) == []
    html = with_images.get_root().render()
    assert html.count("L.imageOverlay") == 4 and "chip images" in html  # one layer in the layer switch


def test_chips_without_a_crs_have_no_footprints(tmp_path: Path) -> None:
    import torch

    table = EmbeddingTable()
    table.add(torch.eye(3), ["a.tif", "b.tif", "c.tif"], [None] * 3, [None] * 3, (8, 8))
    chips = load_chip_embeddings(write_embeddings(table, tmp_path / "e.npz"))
    assert chips.footprints is None and chip_at(chips, 0.0, 0.0) is None
    assert isinstance(chips, ChipEmbeddings) and chips.names == ["a.tif", "b.tif", "c.tif"]


@pytest.fixture(scope="module")
def similar_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("simhome")
    return home, train_detection_run(home)


def test_embed_run_chips_with_a_detection_backbone(similar_home: tuple[Path, Path]) -> None:
    from geoft.app.run_store import RunStore
    from geoft.app.settings import load_settings

    home, data = similar_home
    run = RunStore(load_settings({"GEOFT_HOME": str(home)}).store_path).get(RUN_ID)
    folder = data / "train" / "images"
    path = embed_run_chips(run, folder, embeddings_path(run, folder))
    chips = load_chip_embeddings(path)
    assert len(chips.names) == 4 and chips.vectors.shape[0] == 4 and chips.vectors.shape[1] > 8
    assert np.isfinite(chips.vectors).all() and chips.footprints is not None
    assert chip_at(chips, *chips.footprints.geometry.iloc[3].centroid.coords[0][::-1]) == 3


def test_similar_page_embeds_and_lists_neighbours(
    similar_home: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    home, data = similar_home
    use_home(monkeypatch, home)
    at = AppTest.from_file(str(REPO / "pages" / "6_Similar.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert at.text_input(key="sim_folder").value == str((data / "val" / "images").resolve())
    at.button(key="sim_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    from geoft.app.run_store import RunStore
    from geoft.app.settings import load_settings

    run = RunStore(load_settings({"GEOFT_HOME": str(home)}).store_path).get(RUN_ID)
    written = [embeddings_path(run, (data / "val" / "images").resolve())]
    assert written[0].is_file()
    chips = load_chip_embeddings(written[0])
    expected = nearest_neighbours(chips.vectors, 0, k=3)
    table = at.dataframe[0].value
    assert list(table["chip"]) == [Path(chips.names[h.index]).name for h in expected]
    assert list(table["similarity"]) == [round(h.similarity, 3) for h in expected]
    embedded = written[0].stat().st_mtime_ns
    at.session_state["sim_pending"] = 2  # what a click on chip 2's footprint leaves for the next run
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sim_chip").value == 2
    assert any("Nearest to chip_002.tif" in s.value for s in at.subheader)
    assert list(at.dataframe[0].value["chip"]) == [
        Path(chips.names[h.index]).name for h in nearest_neighbours(chips.vectors, 2, k=3)
    ]
    assert written[0].stat().st_mtime_ns == embedded  # read back, not embedded again


def test_similar_page_opens_a_geoft_embed_file(home: Path) -> None:
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    table, truth = _table(home / "data" / "mine")
    path = write_embeddings(table, home / "data" / "mine" / "embeddings.parquet")
    at = AppTest.from_file(str(REPO / "pages" / "6_Similar.py"), default_timeout=60).run()
    at.radio(key="sim_source").set_value("Open a file from geoft embed").run()
    at.text_input(key="sim_file").input(str(path)).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value["chip"]) == ["chip_002.tif", "chip_001.tif", "chip_003.tif"]
    at.text_input(key="sim_file").input("/etc/passwd").run()
    assert "outside" in " ".join(e.value for e in at.error).lower()
    at.text_input(key="sim_file").input(str(truth[0].image)).run()  # a chip, not an embeddings file
    assert not at.exception, at.exception
    assert "cannot read embeddings" in " ".join(e.value for e in at.error)
