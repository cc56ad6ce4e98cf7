"""Fuzz the config path: random YAML through the CLI, random nested dicts through the web allow-list."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoft.app.config_safety import ALLOWED_PACKAGES, check_class_paths
from geoft.app.forms import config_from_yaml
from geoft.cli import main
from geoft.errors import ConfigError

FUZZ = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEYS = [
    "data",
    "model",
    "trainer",
    "init_args",
    "class_path",
    "num_classes",
    "batch_size",
    "train_data_root",
    "dataset_bands",
    "means",
    "img_grep",
    "max_epochs",
    "backbone",
    "seed_everything",
    "x",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["/nonexistent/dir", "*.tif", "geoft.models.Model", "os.system"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
raw_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["data: [", "a: b: c", "{", "- - -\n  :", "!!python/object/apply:os.system ['true']", "\t:"]
    ),
)
init_args = st.fixed_dictionaries(
    {"num_classes": st.one_of(st.integers(-1, 5), scalars)},
    optional={
        "train_data_root": st.sampled_from(["/nonexistent/dir", ".", "", "/dev/null"]),
        "batch_size": st.one_of(st.integers(-1, 4), scalars),
        "img_grep": st.sampled_from(["*.tif", "[", "**"]),
        "dataset_bands": st.one_of(st.lists(scalars, max_size=3), scalars),
        "means": st.one_of(st.lists(scalars, max_size=3), scalars),
        "unknown_argument": scalars,
    },
)
datamodule_docs = st.builds(
    lambda cls, args: {"data": {"class_path": cls, "init_args": args}},
    st.sampled_from(
        [
            "GenericNonGeoSegmentationDataModule",
            "geoft.datamodules.GenericNonGeoSegmentationDataModule",
            "NoSuchDataModule",
            "os.system",
        ]
    ),
    init_args,
)
yaml_text = st.one_of(
    documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    raw_text,
    datamodule_docs.map(yaml.safe_dump),
)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    out = capsys.readouterr()
    return code, out.out + out.err


def _check(text: str, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        code, output = _run([*command[:1], "-c", str(path), *command[1:]], capsys)
    assert code in (0, 1, 2), (code, output[-500:])
    assert "Traceback" not in output, output[-2000:]


@pytest.mark.timeout(60)
@settings(max_examples=35, **FUZZ)
@given(text=yaml_text)
def test_validate_data_random_yaml(text, capsys):
    _check(text, ["validate-data", "--no_pixels"], capsys)


@pytest.mark.timeout(60)
@settings(max_examples=12, **FUZZ)
@given(text=yaml_text)
def test_fit_print_config_random_yaml(text, capsys):
    _check(text, ["fit", "--print_config"], capsys)


@pytest.mark.timeout(60)
def test_unsafe_yaml_tag_is_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    config = tmp_path / "c.yaml"
    config.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    code, output = _run(["validate-data", "-c", str(config)], capsys)
    assert code == 2 and not marker.exists() and "Traceback" not in output


class_path = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda top, rest: f"{top}.{rest}",
        st.sampled_from([*ALLOWED_PACKAGES, "os", "subprocess", "builtins"]),
        st.from_regex(r"[A-Za-z_.:]{0,15}", fullmatch=True),
    ),
)
configs = st.recursive(
    st.one_of(scalars, class_path),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["class_path", "_target_", "callable", "init_callable", *KEYS]), inner, max_size=4
        ),
    ),
    max_leaves=15,
)


def _named(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [
            v
            for k, v in node.items()
            if k in ("class_path", "_target_", "callable", "init_callable") and isinstance(v, str)
        ]
        return found + [n for v in node.values() for n in _named(v)]
    if isinstance(node, list):
        return [n for v in node for n in _named(v)]
    return []


@pytest.mark.timeout(60)
@settings(max_examples=40, **FUZZ)
@given(config=st.dictionaries(st.sampled_from(KEYS), configs, max_size=4))
def test_check_class_paths_only_raises_config_error(config):
    try:
        check_class_paths(config)
    except ConfigError as err:
        assert "allowed packages" in str(err)
        return
    for name in _named(config):  # accepted: every named class is in an allowed package or a bare name
        top = name.replace(":", ".").split(".", 1)[0].strip()
        assert top in ALLOWED_PACKAGES or name.isidentifier(), name


@pytest.mark.parametrize("bad", ["os.system", "subprocess.Popen", "builtins.eval", "os:system", "geoft x"])
def test_check_class_paths_rejects_outside_packages(bad):
    with pytest.raises(ConfigError):
        check_class_paths({"model": {"init_args": {"loss": [{"class_path": bad}]}}})


@pytest.mark.timeout(60)
@settings(max_examples=30, **FUZZ)
@given(text=yaml_text)
def test_web_config_upload_only_raises_config_error(text):
    try:
        config = config_from_yaml(text)
    except ConfigError as err:
        assert str(err).strip()
        return
    assert isinstance(config, dict) and "data" in config and "model" in config


@pytest.mark.parametrize("value", [False, "false", 0])
def test_web_config_cannot_turn_off_weights_only(value):
    text = yaml.safe_dump({"data": {}, "model": {}, "weights_only": value})
    with pytest.raises(ConfigError, match="weights_only"):
        config_from_yaml(text)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        "class_path: 0.0\n",  # found by fuzzing: ModuleNotFoundError escaped
        "data: {class_path: GenericNonGeoSegmentationDataModule, init_args: {num_classes: null}}\n",  # TypeError
        "data: {class_path: os.system, init_args: {command: 'true'}}\n",  # not a datamodule: never called
    ],
)
def test_validate_data_found_cases(text, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    code, output = _run(["validate-data", "-c", str(config)], capsys)
    assert code == 1 and "ERROR config" in output and "Traceback" not in output
