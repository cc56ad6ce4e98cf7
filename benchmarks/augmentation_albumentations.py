"""Albumentations per sample (as the reference runs them) vs a kornia translation on the batch.

Correctness: the same rotation through albumentations and kornia on the same input (max abs
difference, and the share of mask pixels that differ). Speed: a batch of 8 six-band 224x224
chips, HorizontalFlip + Rotate(limit=30, border_mode=reflect), per sample vs one kornia batch call.

    PYTHONPATH=. python benchmarks/augmentation_albumentations.py
"""

from __future__ import annotations

import time

import albumentations as A
import cv2
import kornia.augmentation as K
import kornia.geometry.transform as KT
import numpy as np
import torch


def correctness() -> dict[str, float]:
    rng = np.random.default_rng(0)
    image = rng.random((64, 64, 6), dtype=np.float32)
    mask = rng.integers(0, 4, (64, 64)).astype(np.float32)
    ref = A.Rotate(limit=(30, 30), border_mode=cv2.BORDER_REFLECT_101, p=1.0)(image=image, mask=mask)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    m = torch.from_numpy(mask)[None, None]
    angle = torch.tensor([30.0])
    ours = KT.rotate(x, angle, mode="bilinear", padding_mode="reflection")
    ours_mask = KT.rotate(m, angle, mode="nearest", padding_mode="reflection")
    image_diff = float(np.abs(ours[0].permute(1, 2, 0).numpy() - ref["image"]).max())
    mask_diff = float((ours_mask[0, 0].numpy() != ref["mask"]).mean())
    flip = A.HorizontalFlip(p=1.0)(image=image)["image"]
    flip_diff = float(np.abs(K.RandomHorizontalFlip(p=1.0)(x)[0].permute(1, 2, 0).numpy() - flip).max())
    return {
        "rotate_image_max_abs": image_diff,
        "rotate_mask_pixels_differ": mask_diff,
        "flip_max_abs": flip_diff,
    }


def speed(repeats: int = 10) -> dict[str, float]:
    batch = torch.rand(8, 6, 224, 224)
    masks = torch.randint(0, 4, (8, 224, 224)).float()
    compose = A.Compose([A.HorizontalFlip(), A.Rotate(limit=30, border_mode=cv2.BORDER_REFLECT_101)])
    start = time.perf_counter()
    for _ in range(repeats):
        for i in range(8):
            compose(image=batch[i].permute(1, 2, 0).numpy(), mask=masks[i].numpy())
    per_sample = (time.perf_counter() - start) / repeats
    seq = K.AugmentationSequential(
        K.RandomHorizontalFlip(), K.RandomRotation(30.0, p=1.0), data_keys=["input", "mask"]
    )
    start = time.perf_counter()
    for _ in range(repeats):
        seq(batch, masks[:, None])
    kornia_batch = (time.perf_counter() - start) / repeats
    return {"albumentations_per_batch_s": per_sample, "kornia_per_batch_s": kornia_batch}


if __name__ == "__main__":
    print(correctness())
    print(speed())
