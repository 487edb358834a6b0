"""Smoke run of `python -m smoothing --quick`: every bound holds and the last line is JSON."""
import json

import pytest

from smoothing.__main__ import main


def test_quick_demo(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the demo's plot needs matplotlib")
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    record = json.loads(lines[-1])
    assert record["demo"] == "smoothing" and record["checks"] > 30
    assert record["within_bound"] == record["checks"]
    assert (tmp_path / "smoothing-quick.png").stat().st_size > 10_000
    assert record["plot"].endswith("smoothing-quick.png")
    assert any(line.startswith("soft_topk_exp") for line in lines)


def test_quick_demo_without_plot(capsys):
    assert main(["--quick", "--no-plot"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["plot"] is None
