from pathlib import Path

import torch

from geoft.hardware import cpu_has_fast_bf16, default_precision


def test_default_precision_follows_the_cpu():
    expected = "bf16-mixed" if cpu_has_fast_bf16() else "32-true"
    assert default_precision("cpu") == expected
    if not torch.cuda.is_available():
        assert default_precision("auto") == expected


def test_cli_default_precision_is_the_hardware_default(capsys):
    from geoft.cli import main

    config = str(Path(__file__).resolve().parents[1] / "configs" / "demo_prithvi_upernet.yaml")
    try:
        main(["fit", "-c", config, "--print_config"])
    except SystemExit:
        pass
    printed = capsys.readouterr().out
    assert f"precision: {default_precision()}" in printed
    try:
        main(["fit", "-c", config, "--trainer.precision", "32-true", "--print_config"])
    except SystemExit:
        pass
    assert "precision: 32-true" in capsys.readouterr().out
