"""The command lines of gan, ebm and smoothing: help, refused flags, output files, progress, learning.

Every user error ends in one error line on stderr and exit status 2 before any work; every picture
goes to out/<package>/<run name>.png, and a --quick run never overwrites the full run's picture.
"""
import json
import os
import subprocess
import sys

import pytest

from ebm.__main__ import main as ebm_main
from gan.__main__ import main as gan_main
from smoothing.__main__ import main as smoothing_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_gan_help_shows_every_command():
    res = subprocess.run([sys.executable, "-m", "gan", "--help"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert res.returncode == 0
    for command in ("train", "compare"):
        assert command in res.stdout, f"`python -m gan --help` does not show {command}"


@pytest.mark.parametrize("main,argv,flag", [
    (gan_main, ["--batch", "0"], "--batch"),
    (gan_main, ["--steps", "-5"], "--steps"),
    (gan_main, ["--lr", "nan"], "--lr"),
    (gan_main, ["--lr", "fast"], "--lr"),
    (gan_main, ["--seed", "-1"], "--seed"),
    (gan_main, ["--stages", "0"], "--stages"),
    (gan_main, ["compare", "--seeds", "0"], "--seeds"),
    (gan_main, ["compare", "--jobs", "0"], "--jobs"),
    (gan_main, ["--data", "moons"], "--data"),
    (ebm_main, ["--iters", "0"], "--iters"),
    (ebm_main, ["--grid", "1"], "--grid"),
    (ebm_main, ["--lr", "-1e-3"], "--lr"),
    (ebm_main, ["--lam", "-1"], "--lam"),
    (ebm_main, ["--seed", "x"], "--seed"),
    (smoothing_main, ["--quick", "--bogus"], "--bogus"),
])
def test_bad_flags_are_refused_before_any_work(main, argv, flag, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].count("error:") == 1 and flag in err.strip().splitlines()[-1]
    assert "Traceback" not in err and "updates/s" not in err and "training on" not in err


@pytest.mark.parametrize("main,argv", [(gan_main, ["--quick"]), (ebm_main, ["--quick"]),
                                       (smoothing_main, ["--quick"])])
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(main, argv, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="without matplotlib no picture is written")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as stop:
        main(argv + ["--out", str(blocker / "pictures")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "output folder" in err and "Traceback" not in err and "updates/s" not in err


def test_a_run_that_diverges_is_one_error_line(capsys):
    assert ebm_main(["--quick", "--iters", "3", "--lr", "1e9", "--grid", "20", "--png", ""]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("python -m ebm: error: training diverged")
    assert "Traceback" not in err and "Warning" not in err


def test_gan_pictures_named_by_run_and_results_a_function_of_the_flags(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the picture needs matplotlib")
    small = ["--steps", "20", "--batch", "16", "--out", str(tmp_path)]
    runs = []
    for argv in (small, small + ["--quick"], small + ["--quick"]):
        assert gan_main(argv) == 0
        out, err = capsys.readouterr()
        runs.append(_last_json(out))
        assert "updates/s" in err and " left" in err, "progress lines show the rate and the time left"
    assert runs[0]["png"] == str(tmp_path / "ring.png") and runs[1]["png"] == str(tmp_path / "ring-quick.png")
    assert (tmp_path / "ring.png").exists() and (tmp_path / "ring-quick.png").exists()
    timing = {"train_seconds", "png"}
    assert {k: v for k, v in runs[1].items() if k not in timing} == \
        {k: v for k, v in runs[2].items() if k not in timing}


def test_ebm_pictures_named_by_run_and_results_a_function_of_the_flags(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the picture needs matplotlib")
    small = ["--iters", "4", "--langevin-steps", "2", "--grid", "30", "--out", str(tmp_path)]
    runs = []
    for argv in (small, small + ["--quick", "--data", "moons"], small + ["--quick", "--data", "moons"]):
        assert ebm_main(argv) == 0
        out, err = capsys.readouterr()
        runs.append(_last_json(out))
        assert "updates/s" in err and " left" in err
    assert runs[0]["png"] == str(tmp_path / "8gaussians.png")
    assert runs[1]["png"] == str(tmp_path / "moons-quick.png") and (tmp_path / "8gaussians.png").exists()
    timing = {"train_s", "total_s"}
    assert {k: v for k, v in runs[1].items() if k not in timing} == \
        {k: v for k, v in runs[2].items() if k not in timing}


def test_gan_quick_budget_learns_several_modes():
    """The exact configuration of `python -m gan --quick` (seed 0): from no mode to most of the ring."""
    from gan.compare import default_config
    from gan.train import train

    _, res = train(default_config(quick=True))
    assert res["start"]["modes_covered"] == 0 and res["start"]["high_quality"] < 0.01
    assert res["modes_covered"] >= 5 and res["high_quality"] > 0.2
