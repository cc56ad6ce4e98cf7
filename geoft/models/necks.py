"""Necks: small modules that reshape encoder features into what a decoder expects.

A neck takes the list of encoder features and returns a new list. ``process_channel_list`` says
what channels come out, so a chain of necks can be planned before any data flows. Names and
arguments follow the reference (TerraTorch), so its configs carry over.

Token features from a ViT are ``[B, 1 + T'*h*w, D]`` and the ViT declares ``out_channels`` ``D``;
:class:`ReshapeTokensToImage` folds the ``T'`` time steps into channels (``D * T'``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError

POOLINGS = ("mean", "max", "min", "cls")


class Neck(nn.Module, ABC):
    """Base class: ``forward(features, image_size=None) -> features`` plus ``process_channel_list``."""

    def __init__(self, channel_list: Sequence[int]) -> None:
        super().__init__()
        self.channel_list = [int(c) for c in channel_list]

    @abstractmethod
    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        """Channels of the features this neck returns, given the channels it receives."""

    @abstractmethod
    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        """Transform the feature list; ``image_size`` is the (padded) input's ``(H, W)``."""


def _check_indices(indices: Sequence[int], length: int, what: str) -> list[int]:
    out = []
    for i in indices:
        if not -length <= int(i) < length:
            raise ConfigError(
                f"{what}: index {i} is out of range for {length} encoder features",
                hint=f"use indices between 0 and {length - 1} (or negative ones counting from the end)",
            )
        out.append(int(i))
    return out


class SelectIndices(Neck):
    """Keep only the features at ``indices`` (e.g. ``[2, 5, 8, 11]`` of a 12-block ViT)."""

    def __init__(self, channel_list: Sequence[int], indices: Sequence[int]) -> None:
        super().__init__(channel_list)
        if not indices:
            raise ConfigError("SelectIndices needs at least one index")
        self.indices = _check_indices(indices, len(self.channel_list), "SelectIndices")

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        return [features[i] for i in self.indices]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [channel_list[i] for i in self.indices]


class PermuteDims(Neck):
    """Permute the dimensions of every feature (``tensor.permute(*new_order)``)."""

    def __init__(self, channel_list: Sequence[int], new_order: Sequence[int]) -> None:
        super().__init__(channel_list)
        if sorted(new_order) != list(range(len(new_order))):
            raise ConfigError(
                f"PermuteDims: new_order {list(new_order)} is not a permutation of 0..{len(new_order) - 1}"
            )
        self.new_order = [int(i) for i in new_order]

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        out = []
        for x in features:
            if x.ndim != len(self.new_order):
                raise ConfigError(
                    f"PermuteDims: new_order has {len(self.new_order)} entries but a feature has {x.ndim} dimensions "
                    f"(shape {tuple(x.shape)})"
                )
            out.append(x.permute(*self.new_order).contiguous())
        return out

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return list(channel_list)


def _token_grid(tokens_per_frame: int, image_size: tuple[int, int] | None, h: int | None) -> tuple[int, int]:
    """Find the ``(h, w)`` patch grid holding ``tokens_per_frame`` tokens."""
    if h is not None:
        if tokens_per_frame % h:
            raise ConfigError(
                f"ReshapeTokensToImage: {tokens_per_frame} tokens per frame do not fill rows of h={h}"
            )
        return h, tokens_per_frame // h
    if image_size is not None:
        H, W = image_size
        # Square patches: exact integer arithmetic, which also stays symbolic under torch.export.
        area = H * W
        if area % tokens_per_frame == 0:
            patch = math.isqrt(area // tokens_per_frame)
            if patch > 0 and patch * patch * tokens_per_frame == area and H % patch == 0 and W % patch == 0:
                return H // patch, W // patch
        guess = round(H * math.sqrt(tokens_per_frame / (H * W)))
        for cand in (guess, guess - 1, guess + 1):
            if cand > 0 and tokens_per_frame % cand == 0:
                gw = tokens_per_frame // cand
                if max(cand * W, gw * H) <= 1.5 * min(cand * W, gw * H):
                    return cand, gw
        raise ConfigError(
            f"ReshapeTokensToImage: {tokens_per_frame} tokens per frame do not form a patch grid for a {H}x{W} image",
            hint="check the backbone's patch size and effective_time_dim, or pass h= explicitly",
        )
    side = math.isqrt(tokens_per_frame)
    if side * side != tokens_per_frame:
        raise ConfigError(
            f"ReshapeTokensToImage: {tokens_per_frame} tokens per frame are not a square grid and no image size is known",
            hint="pass h= (grid height in patches) or run the neck inside a geoft model, which passes image_size",
        )
    return side, side


class ReshapeTokensToImage(Neck):
    """Turn ViT tokens ``[B, (cls+) T'*h*w, D]`` into images ``[B, T'*D, h, w]``.

    The time steps are folded into channels, so a feature declared with ``D`` channels comes out
    with ``D * effective_time_dim``.

    Args:
        channel_list: token width ``D`` of each feature (the backbone's ``out_channels``).
        remove_cls_token: drop the first token.
        effective_time_dim: ``T'`` = frames // tubelet size (1 for single images).
        h: grid height in patches; by default derived from the image size (non-square grids work).
    """

    def __init__(
        self,
        channel_list: Sequence[int],
        remove_cls_token: bool = True,
        effective_time_dim: int = 1,
        h: int | None = None,
    ) -> None:
        super().__init__(channel_list)
        if effective_time_dim < 1:
            raise ConfigError(
                f"ReshapeTokensToImage: effective_time_dim must be >= 1, got {effective_time_dim}"
            )
        if h is not None and h < 1:
            raise ConfigError(f"ReshapeTokensToImage: h must be >= 1, got {h}")
        self.remove_cls_token = remove_cls_token
        self.effective_time_dim = effective_time_dim
        self.h = h

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        out = []
        t = self.effective_time_dim
        for i, x in enumerate(features):
            if x.ndim != 3:
                raise ConfigError(
                    f"ReshapeTokensToImage expects tokens [B, N, D], got a feature of shape {tuple(x.shape)}",
                    hint="this neck is for ViT backbones; CNN features are already images",
                )
            tokens = x[:, 1:, :] if self.remove_cls_token else x
            batch, n, width = tokens.shape
            if i < len(self.channel_list) and width != self.channel_list[i]:
                raise ConfigError(
                    f"ReshapeTokensToImage: feature {i} has {width}-wide tokens but {self.channel_list[i]} "
                    "channels were declared for it",
                    hint="the backbone's out_channels must be its token width D",
                )
            if n % t:
                raise ConfigError(
                    f"ReshapeTokensToImage: {n} tokens cannot be split into effective_time_dim={t} time steps",
                    hint="set effective_time_dim to the number of frames // the tubelet size",
                )
            gh, gw = _token_grid(n // t, image_size, self.h)
            grid = tokens.reshape(batch, t, gh, gw, width).permute(0, 1, 4, 2, 3)
            out.append(grid.reshape(batch, t * width, gh, gw))
        return out

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [c * self.effective_time_dim for c in channel_list]


class AggregateTokens(Neck):
    """Pool one feature into a vector ``[B, C]`` (for classification).

    Tokens ``[B, N, D]`` are pooled over all tokens (``drop_cls`` skips the CLS token first),
    images ``[B, C, H, W]`` over space; ``pooling="cls"`` returns the CLS token itself.
    """

    def __init__(
        self, channel_list: Sequence[int], pooling: str = "mean", index_neck: int = -1, drop_cls: bool = True
    ) -> None:
        super().__init__(channel_list)
        if pooling not in POOLINGS:
            raise ConfigError(
                f"AggregateTokens: unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}"
            )
        self.pooling = pooling
        self.index_neck = _check_indices([index_neck], len(self.channel_list), "AggregateTokens")[0]
        self.drop_cls = drop_cls

    def _pool(self, x: Tensor, dim: int) -> Tensor:
        if self.pooling == "mean":
            return x.mean(dim=dim)
        if self.pooling == "max":
            return x.amax(dim=dim)
        return x.amin(dim=dim)

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        x = features[self.index_neck]
        if x.ndim == 4:
            if self.pooling == "cls":
                raise ConfigError("AggregateTokens: pooling='cls' needs token features, got an image feature")
            return [self._pool(x.flatten(2), dim=2)]
        if x.ndim != 3:
            raise ConfigError(
                f"AggregateTokens expects [B, N, D] or [B, C, H, W], got shape {tuple(x.shape)}"
            )
        if self.pooling == "cls":
            return [x[:, 0]]
        return [self._pool(x[:, 1:] if self.drop_cls else x, dim=1)]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [channel_list[self.index_neck]]


class InterpolateToPyramidal(Neck):
    """Upsample same-size features into a pyramid: feature ``i`` of ``n`` by ``scale_factor**(n-i)``."""

    def __init__(self, channel_list: Sequence[int], scale_factor: int = 2, mode: str = "nearest") -> None:
        super().__init__(channel_list)
        self.scale_factor = scale_factor
        self.mode = mode

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        n = len(features)
        return [
            F.interpolate(x, scale_factor=self.scale_factor ** (n - i), mode=self.mode)
            for i, x in enumerate(features)
        ]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return list(channel_list)


class MaxpoolToPyramidal(Neck):
    """Downsample same-size features into a pyramid: feature ``i`` max-pooled by ``kernel_size**i``."""

    def __init__(self, channel_list: Sequence[int], kernel_size: int = 2) -> None:
        super().__init__(channel_list)
        self.kernel_size = kernel_size

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        return [
            x if i == 0 else F.max_pool2d(x, kernel_size=self.kernel_size**i) for i, x in enumerate(features)
        ]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return list(channel_list)


class LearnedInterpolateToPyramidal(Neck):
    """Learned 4x / 2x / 1x / 0.5x rescaling of exactly four same-size features (ViT to pyramid)."""

    def __init__(self, channel_list: Sequence[int]) -> None:
        super().__init__(channel_list)
        if len(self.channel_list) != 4:
            raise ConfigError(
                f"LearnedInterpolateToPyramidal needs exactly 4 features, got {len(self.channel_list)}",
                hint="put SelectIndices(indices=[...4 indices...]) before it",
            )
        c0, c1 = self.channel_list[0], self.channel_list[1]
        if c0 < 4 or c1 < 2:
            raise ConfigError(
                f"LearnedInterpolateToPyramidal: channels {self.channel_list} are too few to halve"
            )
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(c0, c0 // 2, 2, 2),
            nn.BatchNorm2d(c0 // 2),
            nn.GELU(),
            nn.ConvTranspose2d(c0 // 2, c0 // 4, 2, 2),
        )
        self.fpn2 = nn.ConvTranspose2d(c1, c1 // 2, 2, 2)
        self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        if len(features) != 4:
            raise ConfigError(f"LearnedInterpolateToPyramidal got {len(features)} features, expected 4")
        return [self.fpn1(features[0]), self.fpn2(features[1]), features[2], self.fpn4(features[3])]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [channel_list[0] // 4, channel_list[1] // 2, channel_list[2], channel_list[3]]


class AddBottleneckLayer(Neck):
    """Append a feature: the last one through a 1x1 conv halving its channels (for some smp decoders)."""

    def __init__(self, channel_list: Sequence[int]) -> None:
        super().__init__(channel_list)
        last = self.channel_list[-1]
        if last < 2:
            raise ConfigError(f"AddBottleneckLayer: the last feature has {last} channel(s), too few to halve")
        self.bottleneck = nn.Conv2d(last, last // 2, kernel_size=1)

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        return [*features, self.bottleneck(features[-1])]

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [*channel_list, channel_list[-1] // 2]


class NeckChain(nn.Module):
    """Run necks one after another, passing ``image_size`` to each."""

    def __init__(self, necks: Sequence[Neck], out_channels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.necks = nn.ModuleList(necks)
        #: channels of the features the chain returns (what the decoder was built for), if known
        self.out_channels = list(out_channels) if out_channels is not None else None

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        features = list(features)
        for neck in self.necks:
            features = neck(features, image_size=image_size)
        return features

    def __len__(self) -> int:
        return len(self.necks)


def build_neck_list(
    specs: Sequence[dict[str, Any]], channel_list: Sequence[int]
) -> tuple[list[Neck], list[int]]:
    """Build necks from ``[{"name": ..., **args}, ...]``; return them and the final channel list."""
    from geoft.models.signature import check_kwargs
    from geoft.registry import NECK_REGISTRY

    necks: list[Neck] = []
    channels = [int(c) for c in channel_list]
    for position, spec in enumerate(specs):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(
                f"necks[{position}] must be a dict with a 'name' key, got {spec!r}",
                hint="write e.g. necks: [{name: SelectIndices, indices: [2, 5, 8, 11]}, {name: ReshapeTokensToImage}]",
            )
        args = {k: v for k, v in spec.items() if k != "name"}
        ctor = NECK_REGISTRY.get(spec["name"])
        check_kwargs(ctor, args, f"neck {spec['name']!r} (necks[{position}])", skip=("channel_list",))
        neck = ctor(channels, **args)
        channels = neck.process_channel_list(channels)
        necks.append(neck)
    return necks, channels


__all__ = [
    "AddBottleneckLayer",
    "AggregateTokens",
    "InterpolateToPyramidal",
    "LearnedInterpolateToPyramidal",
    "MaxpoolToPyramidal",
    "Neck",
    "NeckChain",
    "PermuteDims",
    "ReshapeTokensToImage",
    "SelectIndices",
    "build_neck_list",
]
