"""Check a submitted ``geoft fit`` config before it is queued, through the CLI's own parser and classes.

Every problem becomes one line that names the key (with "did you mean" for typos), never a parser
dump. The CLI step is :func:`instantiate_like_fit`, kept small so it can switch to a shared
instantiation later.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoft.app.config_safety import check_class_paths, check_config_paths
from geoft.errors import GeoftError

# top-level keys of `geoft fit` (LightningCLI's core arguments plus geoft's own)
TOP_LEVEL_KEYS = (
    "seed_everything",
    "trainer",
    "model",
    "data",
    "optimizer",
    "lr_scheduler",
    "ckpt_path",
    "run_name",
    "predict_output_dir",
    "config",
)


@dataclass
class CheckResult:
    """What the check found: problems (one line each) and the weight load reports of the model."""

    problems: list[str] = field(default_factory=list)
    load_reports: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _unknown(keys: Iterable[str], valid: Sequence[str], where: str) -> list[str]:
    out = []
    for key in keys:
        if key in valid:
            continue
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = (
            f"; did you mean {where}{close[0]}?"
            if close
            else f"; valid keys: {', '.join(sorted(valid)[:12])}"
        )
        out.append(f"{where}{key}: unknown key{hint}")
    return out


def _parameters(cls: Any) -> tuple[list[str], bool]:
    """Keyword names of ``cls.__init__`` and whether it also takes ``**kwargs``."""
    params = inspect.signature(cls.__init__).parameters.values()
    names = [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def key_problems(config: dict[str, Any]) -> list[str]:
    """Unknown keys at the top level, in ``trainer`` and in the ``init_args`` of ``model`` and ``data``."""
    from lightning.pytorch import Trainer

    from geoft.config.compat import resolve_name
    from geoft.registry import import_object

    problems = _unknown(config, TOP_LEVEL_KEYS, "")
    trainer = config.get("trainer") or {}
    if isinstance(trainer, dict):
        problems += _unknown(trainer, _parameters(Trainer)[0], "trainer.")
    for section in ("model", "data"):
        node = config.get(section)
        if not isinstance(node, dict) or "class_path" not in node:
            problems.append(f"{section}.class_path: missing; start from a preset")
            continue
        problems += _unknown(node, ("class_path", "init_args", "dict_kwargs"), f"{section}.")
        try:  # short and TerraTorch names resolve as in `geoft fit`
            cls = import_object(resolve_name(str(node["class_path"]), notice=lambda _message: None))
        except Exception as err:  # an unimportable name is a config problem, not a crash
            problems.append(f"{section}.class_path: cannot import {node['class_path']!r} ({err})")
            continue
        names, takes_kwargs = _parameters(cls)
        if not takes_kwargs:
            problems += _unknown(node.get("init_args") or {}, names, f"{section}.init_args.")
    return problems


def _roots_and_greps(root: Any, grep: Any) -> list[tuple[str, str]]:
    """``(folder, pattern)`` of a data root, one per modality where the root is ``{modality: folder}``."""
    if isinstance(root, dict):
        greps = grep if isinstance(grep, dict) else {}
        return [(str(r), str(greps.get(m) or "*")) for m, r in root.items() if r and Path(r).is_dir()]
    return (
        [(str(root), str(grep or "*"))] if root and Path(root).is_dir() and not isinstance(grep, dict) else []
    )


def unreadable_files(config: dict[str, Any]) -> list[str]:
    """Images and labels of the config's datamodule that cannot be opened (corrupt or truncated)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from geoft.datasets.annotations import VECTOR_SUFFIXES
    from geoft.datasets.pairing import find_files

    annotation_suffixes = (*VECTOR_SUFFIXES, ".json", ".txt")  # object annotations are no rasters
    args = (config.get("data") or {}).get("init_args") or {}
    seen: set[Path] = set()
    problems = []
    for split in ("train", "val", "test"):
        for root_key, grep_key in (
            (f"{split}_data_root", "img_grep"),
            (f"{split}_label_data_root", "label_grep"),
        ):
            files = []
            for root, grep in _roots_and_greps(
                args.get(root_key), args.get(grep_key) or args.get("image_grep")
            ):
                files += find_files(root, grep)[0]
            for path in files:
                if path in seen or path.is_dir() or path.suffix.lower() in annotation_suffixes:
                    continue
                seen.add(path)
                try:
                    with rasterio.open(path):
                        pass
                except RasterioIOError:
                    problems.append(
                        f"data.init_args.{root_key}: {path.name} is not a readable raster (corrupt or truncated); "
                        "remove or replace it"
                    )
    return problems


_NOISE = (
    "Given value",
    "Subtypes",
    "Errors:",
    "Does not validate",
    "Parser key",
    "Problem with given class_path",
)


def _geoft_cause(err: BaseException) -> GeoftError | None:
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 10:
        if isinstance(current, GeoftError):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def one_line(err: BaseException) -> str:
    """An error as one line naming its key: a GeoftError's message (and hint), or the innermost
    problem of a jsonargparse error (the parser's dump of the whole config left out)."""
    raw = str(err)
    section = "data" if "LightningDataModule" in raw else "model" if "LightningModule" in raw else ""
    cause = _geoft_cause(err)
    if cause is not None:
        text = cause.message + (f" ({cause.hint})" if cause.hint else "")
        if section and not text.startswith(section):
            text = f"{section}: {text}"
    else:
        keys = re.findall(r'Parser key "([^"]+)"', raw)
        if keys and keys[0] in ("model", "data") and len(keys) > 1:
            keys.insert(1, "init_args")
        useful = [
            ln.strip().lstrip("- ").strip()
            for ln in raw.splitlines()
            if ln.strip() and not ln.strip().lstrip("- ").startswith(_NOISE) and "NoneType" not in ln
        ]
        text = (useful[0] if useful else type(err).__name__).replace("Hint: ", "")
        if len(useful) > 1 and useful[1].startswith("Hint:"):
            text += f" ({useful[1][5:].strip()})"
        if keys or section:
            text = f"{'.'.join(keys) or section}: {text}"
    return " ".join(text.split())[:400]


def instantiate_like_fit(config: dict[str, Any]) -> Any:
    """Parse ``config`` with ``geoft fit``'s parser and build its model and datamodule as the CLI does
    (no run folder, no trainer). Returns the built model."""
    from geoft.lightning_cli import GeoftCLI

    class _CheckOnly(GeoftCLI):
        def init_parser(self, **kwargs: Any) -> Any:
            return super().init_parser(**{**kwargs, "exit_on_error": False})

        def before_instantiate_classes(self) -> None:  # no run folder for a check
            pass

        def instantiate_classes(self) -> None:
            self.config_init = self.parser.instantiate_classes(self.config)
            self.model = self._get(self.config_init, "model")

    import warnings

    fit_config = {k: v for k, v in config.items() if k not in ("run_name", "predict_output_dir")}
    with warnings.catch_warnings():  # "args and sys.argv both given": sys.argv is the app server's
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        return _CheckOnly(args=fit_config, run=False).model


def weight_reports(model: Any) -> list[str]:
    """Load reports of every part of ``model`` that loaded weights (see ``LoadReport.summary``)."""
    out = []
    for module in getattr(model, "modules", lambda: [])():
        report = getattr(module, "load_report", None)
        if report is not None and hasattr(report, "summary"):
            out.append(report.summary())
    return out


def check_submission(config: dict[str, Any], roots: Sequence[Path]) -> CheckResult:
    """Everything wrong with ``config`` that would make ``geoft fit`` fail, found before queueing."""
    result = CheckResult()
    try:
        check_class_paths(config)
        check_config_paths(config, roots, skip=["trainer.default_root_dir"])
    except GeoftError as err:
        result.problems.append(one_line(err))
        return result
    result.problems += key_problems(config)
    result.problems += unreadable_files(config)
    if result.problems:
        return result
    try:
        model = instantiate_like_fit(config)
    except SystemExit as err:  # jsonargparse may still exit on a few errors: never let it end the app
        result.problems.append(f"the config was refused by the command-line parser (exit {err.code})")
        return result
    except Exception as err:
        result.problems.append(one_line(err))
        return result
    result.load_reports = weight_reports(model)
    return result


def random_weights_warning(config: dict[str, Any]) -> str | None:
    """A warning when the backbone starts from random weights (no pretrained switch, no checkpoint)."""
    args = ((config.get("model") or {}).get("init_args") or {}).get("model_args") or {}
    if args.get("backbone_pretrained") or args.get("backbone_ckpt_path"):
        return None
    return (
        f"The backbone {args.get('backbone', '?')} starts from random weights: fine-tuning a foundation model "
        "without its pretrained weights needs far more data and epochs. Switch on 'pretrained' or give a "
        "checkpoint."
    )
