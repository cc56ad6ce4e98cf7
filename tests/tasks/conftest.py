"""Tiny models and datamodules for task tests (random but learnable data, batch contract of docs/architecture.md)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import lightning
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from geoft.models.model import Model, ModelOutput, freeze_module


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, keep metadata (str / None / tuples) as lists, like the geoft datamodules."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


class TinyDataset(Dataset):
    """Samples whose target is a simple function of the image, so a small net can learn it.

    kind: ``segmentation`` (class = bin of channel 0), ``regression`` (2*c0 + c1), ``classification``
    (mean of channel 0 > 0), ``multilabel`` (mean of channel k > 0 for each label k).
    """

    def __init__(
        self,
        kind: str,
        n: int,
        size: int,
        channels: int,
        num_classes: int,
        seed: int,
        ignore_index: int | None,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.kind = kind
        self.images = torch.randn(n, channels, size, size, generator=g)
        # smooth the images so there is spatial structure
        self.images = nn.functional.avg_pool2d(self.images, 3, stride=1, padding=1) * 3
        c0 = self.images[:, 0]
        if kind == "segmentation":
            edges = torch.linspace(-1, 1, num_classes + 1)[1:-1]
            self.targets = torch.bucketize(c0, edges).long()
            if ignore_index is not None:
                self.targets[:, :2, :2] = ignore_index
        elif kind == "regression":
            self.targets = (2 * c0 + self.images[:, 1]).float()
            if ignore_index is not None:
                self.targets[:, :2, :2] = ignore_index
            self.targets[:, -1, -1] = float("nan")
        elif kind == "classification":
            self.targets = (self.images[:, 0].mean(dim=(1, 2)) > 0).long() + (
                self.images[:, 1].mean(dim=(1, 2)) > 0
            ).long() * (num_classes > 2)
        elif kind == "multilabel":
            self.targets = (self.images[:, :num_classes].mean(dim=(2, 3)) > 0).float()
        else:
            raise ValueError(kind)
        self.key = "mask" if kind in ("segmentation", "regression") else "label"

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "image": self.images[i],
            self.key: self.targets[i],
            "filename": f"chip_{i}.tif",
            "crs": None,
            "transform": (10.0, 0.0, 500000.0 + i, 0.0, -10.0, 4000000.0),
        }


class TinyDataModule(lightning.LightningDataModule):
    def __init__(
        self,
        kind: str = "segmentation",
        n: int = 16,
        size: int = 16,
        channels: int = 3,
        num_classes: int = 3,
        batch_size: int = 4,
        ignore_index: int | None = None,
        test_loaders: int = 1,
    ) -> None:
        super().__init__()
        args = (kind, n, size, channels, num_classes)
        self.train_ds = TinyDataset(*args, seed=0, ignore_index=ignore_index)
        self.val_ds = TinyDataset(*args, seed=1, ignore_index=ignore_index)
        self.test_ds = [
            TinyDataset(*args, seed=2 + i, ignore_index=ignore_index) for i in range(test_loaders)
        ]
        self.batch_size = batch_size

    def _loader(self, ds: Dataset, shuffle: bool = False) -> DataLoader:
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_ds)

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        loaders = [self._loader(ds) for ds in self.test_ds]
        return loaders[0] if len(loaders) == 1 else loaders

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.val_ds)


class PixelNet(nn.Module):
    """Plain module returning a Tensor: ``[B, out, H, W]`` (or ``[B, H, W]`` when ``squeeze``)."""

    def __init__(self, in_ch: int = 3, out: int = 3, squeeze: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_ch, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, out, 1))
        self.squeeze = squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return y.squeeze(1) if self.squeeze else y


class ImageNet(nn.Module):
    """Plain module returning logits ``[B, out]``."""

    def __init__(self, in_ch: int = 3, out: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyModel(Model):
    """A geoft Model with encoder / decoder / head and optional auxiliary heads (segmentation layout)."""

    def __init__(self, in_ch: int = 3, num_classes: int = 3, aux_names: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(in_ch, 8, 3, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)
        # auxiliary heads predict at half resolution, to exercise resizing in the task
        self.aux = nn.ModuleDict({name: nn.Conv2d(8, num_classes, 2, stride=2) for name in aux_names})

    def freeze_encoder(self) -> None:
        freeze_module(self.encoder)

    def freeze_decoder(self) -> None:
        freeze_module(self.decoder)

    def freeze_head(self) -> None:
        freeze_module(self.head)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> ModelOutput:
        f = self.encoder(x)
        d = self.decoder(f)
        return ModelOutput(self.head(d), {name: head(f) for name, head in self.aux.items()})


class TinyFactory:
    """A model factory for tests: ``build_model(task, in_ch, num_classes, aux_decoders)``."""

    calls: list[dict[str, Any]] = []

    def build_model(
        self, task: str, in_ch: int = 3, num_classes: int = 3, aux_decoders: list[Any] | None = None
    ) -> Model:
        TinyFactory.calls.append({"task": task, "aux_decoders": aux_decoders})
        if task != "segmentation":
            raise ValueError(f"TinyFactory builds segmentation models only, got {task}")
        return TinyModel(in_ch, num_classes, tuple(a.name for a in aux_decoders or ()))


@pytest.fixture(scope="session")
def tiny_factory_name() -> str:
    """Register :class:`TinyFactory` in the model-factory registry and return its name."""
    from geoft.registry import MODEL_FACTORY_REGISTRY

    name = "TinyTestFactory"
    if name not in MODEL_FACTORY_REGISTRY:
        MODEL_FACTORY_REGISTRY.register(name)(TinyFactory)
    return name


def trainer(**kwargs: Any) -> lightning.Trainer:
    defaults: dict[str, Any] = {
        "max_epochs": 1,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    defaults.update(kwargs)
    return lightning.Trainer(**defaults)


@pytest.fixture
def tk() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode cannot import conftest directly)."""
    return SimpleNamespace(
        DataModule=TinyDataModule,
        PixelNet=PixelNet,
        ImageNet=ImageNet,
        TinyModel=TinyModel,
        TinyFactory=TinyFactory,
        trainer=trainer,
        collate=collate,
    )
