import subprocess
import sys

import pytest

from geoft.errors import RegistryError
from geoft.registry import LazyTable, MultiSourceRegistry


def test_unknown_name_lists_close_matches():
    reg = MultiSourceRegistry(
        "thing", {"geoft": LazyTable({"alpha_net": "math:sqrt", "beta_net": "math:floor"})}
    )
    with pytest.raises(RegistryError, match="Did you mean: alpha_net"):
        reg.get("alpha_nett")


def test_default_prefix_is_optional_and_lazy():
    reg = MultiSourceRegistry("thing", {"geoft": LazyTable({"root": "math:sqrt"})})
    assert reg.build("root", 9.0) == 3.0
    assert reg.build("geoft_root", 16.0) == 4.0
    assert "root" in reg and "geoft_root" in reg and "nope" not in reg


def test_register_decorator():
    reg = MultiSourceRegistry("thing", {"geoft": LazyTable()})

    @reg.register()
    def double(x):
        return 2 * x

    assert reg.build("double", 3) == 6
    assert reg.names() == ["double"]


def test_listing_names_is_light():
    code = (
        "import sys, geoft, geoft.registry as r\n"
        "for reg in (r.BACKBONE_REGISTRY, r.NECK_REGISTRY, r.DECODER_REGISTRY, r.MODEL_FACTORY_REGISTRY):\n"
        "    reg.names()\n"
        "heavy = [m for m in ('torch', 'timm', 'lightning', 'segmentation_models_pytorch', 'rasterio') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
