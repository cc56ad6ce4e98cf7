"""FeaturePyramidNetworkNeck: torchvision's feature pyramid network as a neck (same channels at every level).

Detection heads (torchvision's RPN, RetinaNet, FCOS) need every pyramid level to have the same number of
channels; this neck gives them ``out_channel`` channels each. Name and arguments follow the reference.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor
from torchvision.ops import FeaturePyramidNetwork

from geoft.errors import ConfigError
from geoft.models.necks import Neck


class FeaturePyramidNetworkNeck(Neck):
    """Lateral 1x1 convolutions and a top-down pathway over the features (finest first).

    Args:
        channel_list: channels of the incoming features.
        out_channel: channels of every returned level.
        output_ordered_dict: accepted for reference configs; geoft necks always return a list (the
            detection model names the levels itself).
    """

    def __init__(
        self, channel_list: Sequence[int], out_channel: int = 256, output_ordered_dict: bool = True
    ) -> None:
        super().__init__(channel_list)
        if out_channel < 1:
            raise ConfigError(f"FeaturePyramidNetworkNeck: out_channel must be positive, got {out_channel}")
        if not self.channel_list or min(self.channel_list) < 1:
            raise ConfigError(f"FeaturePyramidNetworkNeck: bad channel list {self.channel_list}")
        self.out_channel = int(out_channel)
        self.output_ordered_dict = output_ordered_dict
        self.fpn = FeaturePyramidNetwork(self.channel_list, self.out_channel)

    def forward(self, features: list[Tensor], image_size: tuple[int, int] | None = None) -> list[Tensor]:
        if len(features) != len(self.channel_list):
            raise ConfigError(
                f"FeaturePyramidNetworkNeck was built for {len(self.channel_list)} features, got {len(features)}"
            )
        named = OrderedDict((f"feat{i}", f) for i, f in enumerate(features))
        return list(self.fpn(named).values())

    def process_channel_list(self, channel_list: list[int]) -> list[int]:
        return [self.out_channel] * len(channel_list)


__all__ = ["FeaturePyramidNetworkNeck"]
