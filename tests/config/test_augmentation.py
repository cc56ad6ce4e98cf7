"""Albumentations transforms named in a config run per sample, exactly as albumentations runs them."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from geoft.datamodules.transforms import AugmentingCollate, build_augmentations, build_sample_augmentation
from geoft.datasets.samples import collate_samples
from geoft.errors import ConfigError


def _sample(shape=(6, 32, 32)) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.rand(shape, generator=g), "mask": torch.randint(-1, 3, shape[-2:], generator=g)}


def test_reference_forms_build_and_toTensor_and_temporal_markers_are_no_ops() -> None:
    spec = [
        {"class_path": "terratorch.datasets.transforms.FlattenTemporalIntoChannels"},
        {"class_path": "albumentations.HorizontalFlip", "init_args": {"p": 0.5}},
        {"class_path": "albumentations.Rotate", "init_args": {"limit": 30, "border_mode": 0, "p": 0.5}},
        {"class_path": "albumentations.D4"},
        {
            "class_path": "albumentations.augmentations.geometric.resize.Resize",
            "init_args": {"height": 16, "width": 16},
        },
        {"class_path": "albumentations.pytorch.ToTensorV2"},
        {"class_path": "ToTensorV2"},
        {"class_path": "UnflattenTemporalFromChannels"},
        "hflip",
    ]
    from geoft.config.compat import translate

    spec = translate(spec, lambda _m: None, top_level=False)
    sample_aug = build_sample_augmentation(spec)
    assert sample_aug is not None
    assert [type(t).__name__ for t in sample_aug.transforms] == ["HorizontalFlip", "Rotate", "D4", "Resize"]
    assert len(build_augmentations(spec)) == 1  # "hflip" stays in the kornia batch pipeline
    out = sample_aug(_sample())
    assert out["image"].shape == (6, 16, 16) and out["mask"].shape == (16, 16)
    assert out["mask"].dtype == torch.int64


def test_same_pixels_as_albumentations_on_the_same_input() -> None:
    sample = _sample()
    spec = [
        {
            "class_path": "albumentations.Rotate",
            "init_args": {"limit": [20, 20], "border_mode": cv2.BORDER_REFLECT_101, "p": 1.0},
        }
    ]
    ours = build_sample_augmentation(spec)(sample)
    ref = A.Rotate(limit=(20, 20), border_mode=cv2.BORDER_REFLECT_101, p=1.0)(
        image=sample["image"].permute(1, 2, 0).numpy(), mask=sample["mask"].numpy().astype(np.float32)
    )
    np.testing.assert_array_equal(ours["image"].permute(1, 2, 0).numpy(), ref["image"])
    np.testing.assert_array_equal(ours["mask"].numpy(), ref["mask"].astype(np.int64))
    flipped = build_sample_augmentation(
        [{"class_path": "albumentations.VerticalFlip", "init_args": {"p": 1.0}}]
    )(sample)
    assert torch.equal(flipped["image"], sample["image"].flip(-2)) and torch.equal(
        flipped["mask"], sample["mask"].flip(-2)
    )


def test_time_steps_move_together_and_the_collate_applies_it() -> None:
    sample = _sample((2, 3, 16, 16))
    aug = build_sample_augmentation(
        [{"class_path": "albumentations.HorizontalFlip", "init_args": {"p": 1.0}}]
    )
    batch = AugmentingCollate(aug, collate_samples)([sample, sample])
    assert batch["image"].shape == (2, 2, 3, 16, 16)
    assert torch.equal(batch["image"][0], sample["image"].flip(-1))


def test_unknown_or_badly_argued_transform_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"albumentations\.HorizntalFlip.*\n.*HorizontalFlip"):
        build_sample_augmentation([{"class_path": "albumentations.HorizntalFlip"}])
    with pytest.raises(ConfigError, match=r"(?s)limt.*did you mean limit"):
        build_sample_augmentation([{"class_path": "albumentations.Rotate", "init_args": {"limt": 3}}])


def test_albumentations_1_flip_still_works() -> None:
    sample = _sample((2, 8, 8))
    aug = build_sample_augmentation([{"class_path": "albumentations.Flip", "init_args": {"p": 1.0}}])
    image = sample["image"]
    seen = set()
    for _ in range(30):
        out = aug(sample)["image"]
        match = [
            torch.equal(out, image.flip(-1)),
            torch.equal(out, image.flip(-2)),
            torch.equal(out, image.flip(-1, -2)),
        ]
        assert any(match)
        seen.add(match.index(True))
    assert seen == {0, 1, 2}
