"""Bad inputs: text that once made the tokenizer quadratic or hungry, configuration values out of bounds,
and command lines given wrong arguments. Each case asserts the exact behaviour: a bound that the old code
broke by far, a ValueError naming the field, or a refusal with exit status 2, one or two lines on stderr
and no traceback.

Time and memory are measured in a child process (a fresh interpreter, resource.getrusage), so the rest of
the suite does not count; the bounds are loose enough for a loaded 2-core machine and still far below what
the quadratic and per-character versions took (over a minute for a 60,000-character word; about 1.2 GB
for 10 MB of text without spaces).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from minibert.config import BertConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")

# the child: builds a tokenizer on the demo vocabulary and one of these texts, reports seconds and peak RSS
TEXTS = {
    "sigma-word": "'\\u0391' * 60000 + '\\u03a3'",                # one 60,001-letter word ending in a capital sigma
    "marks": "('e' + '\\u0301' * 30000 + ' ') * 2",                 # two letters, each with 30,000 accents
    "sigmas": "'\\u0391\\u03a3,' * 40000",                        # 40,000 two-letter words, each a final sigma
    "one-word": "'a' * 10_000_000",                                 # 10 MB, one word
    "words-and-punctuation": "('hello,world.' * 1_000_000)[:10_000_000]",
    "ideographs": "(''.join(chr(0x4e00 + i) + 'ab' for i in range(50)) * 66_667)[:10_000_000]",
}
CHILD = """
import json, resource, sys, time
def peak_mb():
    # this process's own peak RSS: VmHWM belongs to the memory map exec made, while Linux carries
    # ru_maxrss over from the parent that forked us (a large pytest process would show as ours)
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from minibert.demo_corpus import demo_vocab
from minibert.tokenizer import Tokenizer
tok = Tokenizer(demo_vocab(), lowercase=sys.argv[2] == "lower")
text = {texts}[sys.argv[1]]()
before = peak_mb()
t0 = time.perf_counter()
out = getattr(tok, sys.argv[3])(text)
seconds = time.perf_counter() - t0
tokens = out[0] if isinstance(out, tuple) else out
print(json.dumps({{"seconds": seconds, "peak_mb": peak_mb(),
                  "before_mb": before, "n": len(tokens), "head": tokens[:3], "chars": len(text)}}))
""".format(texts="{" + ", ".join(f"{k!r}: lambda: {v}" for k, v in TEXTS.items()) + "}")


def _measure(name, method="tokenize", lowercase=True, timeout=120):
    proc = subprocess.run([sys.executable, "-c", CHILD, name, "lower" if lowercase else "cased", method],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- the tokenizer: time linear in the text, memory a small multiple of it -------------------------------

@pytest.mark.parametrize("method", ["tokenize", "tokenize_with_offsets"])
def test_one_long_word_with_a_final_sigma_is_fast(method):
    # the quadratic version: 27 s for 20,000 letters, over a minute for 60,000
    r = _measure("sigma-word", method)
    assert r["head"] == ["[UNK]"] and r["n"] == 1
    assert r["seconds"] < 20, r


@pytest.mark.parametrize("lowercase", [True, False])
def test_runs_of_combining_marks_are_fast(lowercase):
    r = _measure("marks", "tokenize_with_offsets", lowercase)
    assert r["seconds"] < 20, r


def test_many_sigmas_in_one_unit_keep_offsets_linear():
    r = _measure("sigmas", "tokenize_with_offsets")
    assert r["n"] == 80000 and r["seconds"] < 30, r


@pytest.mark.parametrize("name", ["one-word", "words-and-punctuation", "ideographs"])
def test_ten_megabytes_without_spaces_stay_under_300_mb(name):
    # per-character regex state and offset tuples once took about 120 bytes a character (1.2 GB here)
    r = _measure(name, timeout=240)
    assert r["chars"] == 10_000_000
    assert r["peak_mb"] < 300, r


def test_long_text_gives_the_same_tokens_as_its_pieces():
    """A long unit takes the path without offsets; its tokens are those of the short path."""
    from minibert.demo_corpus import demo_lines, demo_vocab
    from minibert.tokenizer import LONG_UNIT, Tokenizer
    tok = Tokenizer(demo_vocab())
    words = " ".join(demo_lines(200, 0)).split()
    glued = ",".join(words)                                   # one unit, far longer than LONG_UNIT
    assert len(glued) > 10 * LONG_UNIT
    want = []
    for k, w in enumerate(words):
        want += ([","] if k else []) + tok.tokenize(w)
    assert tok.tokenize(glued) == want
    assert tok.tokenize_with_offsets(glued)[0] == want
    assert tok.text_to_ids(glued) == tok.tokens_to_ids(want)


# ---- configuration values: refused before anything is allocated -------------------------------------

@pytest.mark.parametrize("field, value", [
    ("num_hidden_layers", 10**7), ("num_hidden_layers", -1), ("hidden_size", 10**6), ("vocab_size", 0),
    ("vocab_size", 10**9), ("intermediate_size", -4), ("intermediate_size", 10**7),
    ("num_attention_heads", 10**5), ("max_position_embeddings", 10**8), ("type_vocab_size", 10**6),
    ("layer_norm_eps", float("inf")), ("layer_norm_eps", float("nan")), ("layer_norm_eps", 1.0),
    ("initializer_range", float("inf")), ("hidden_dropout_prob", float("nan")), ("hidden_size", 2.5),
    ("num_hidden_layers", True), ("pad_token_id", -1),
])
def test_config_out_of_bounds_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"config.{field}"):
        BertConfig(**{field: value})


def test_config_json_with_huge_layer_count_is_refused_at_once(tmp_path):
    """load_pretrained reads config.json first: 10^7 layers is refused before any weight is read."""
    from minibert.checkpoint import load_pretrained
    d = BertConfig(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
                   intermediate_size=4, max_position_embeddings=8).to_dict()
    for field, value in [("num_hidden_layers", 10**7), ("layer_norm_eps", "Infinity")]:
        text = json.dumps(dict(d, **{field: 0})).replace(f'"{field}": 0', f'"{field}": {value}')
        (tmp_path / "config.json").write_text(text)
        with pytest.raises(ValueError, match=f"config.{field}"):
            load_pretrained(str(tmp_path))


def test_config_json_nested_100000_deep_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="config.json"):
        BertConfig.from_json(str(tmp_path))


# ---- command lines: refused before any work, one or two lines, exit status 2, no traceback ----------------

SMALL = ["--lines", "200", "--steps", "4", "--batch-size", "4", "--maxlen", "32", "--layers", "1", "--hidden", "16",
         "--heads", "2", "--intermediate", "32", "--eval-every", "2", "--save-every", "2"]


def _cli(module, *args, timeout=60):
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _assert_refused(rc, err, *fragments):
    assert rc == 2, err
    assert "Traceback" not in err and 1 <= len(err.strip().splitlines()) <= 2, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize("args, fragments", [
    (["--save-every", "0"], ["argument --save-every: expected an int >= 1, got '0'"]),
    (["--batch-size", "0"], ["argument --batch-size: expected an int >= 1, got '0'"]),
    (["--mask-rate", "1.5"], ["argument --mask-rate: expected a number in (0, 1], got '1.5'"]),
    (["--mask-rate", "0"], ["argument --mask-rate"]),
    (["--steps", "-3"], ["argument --steps"]), (["--accum", "x"], ["argument --accum"]),
    (["--lr", "inf"], ["argument --lr"]), (["--dropout", "1"], ["argument --dropout"]),
    (["--ema", "1.0"], ["argument --ema"]), (["--seed", "-1"], ["argument --seed"]),
    (["--eval-every", "0"], ["argument --eval-every"]), (["--maxlen", "2"], ["argument --maxlen"]),
    (["--layers", "10000000"], ["--layers (config.num_hidden_layers) must be an int in [1, 1,000]"]),
    (["--hidden", "30", "--heads", "4"], ["--hidden (config.hidden_size) (30) must be divisible"]),
    (["--optimizer", "sgd"], ["--optimizer must be 'adamw' or 'lamb'"]),
    (["--corpus", "/nonexistent/corpus.txt", "--vocab", "/nonexistent/v.txt"], ["--corpus file not found"]),
    (["--no-such-flag"], ["unrecognized arguments: --no-such-flag"]),
])
def test_pretrain_refuses_bad_arguments_before_any_work(args, fragments):
    rc, out, err = _cli("minibert.pretrain", *SMALL, *args)
    _assert_refused(rc, err, *fragments)
    assert out == "" and "held-out" not in err                      # no training step ran


def test_pretrain_checks_out_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    rc, _, err = _cli("minibert.pretrain", *SMALL, "--out", str(tmp_path / "file"))
    _assert_refused(rc, err, "exists and is not a folder")
    rc, _, err = _cli("minibert.pretrain", *SMALL, "--out", str(tmp_path / "file" / "run"))
    _assert_refused(rc, err, "cannot write there")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "data.csv").write_text("1,2\n")
    rc, _, err = _cli("minibert.pretrain", *SMALL, "--out", str(theirs))
    _assert_refused(rc, err, "holds files that are not this program's checkpoints")
    assert os.listdir(theirs) == ["data.csv"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
def test_pretrain_reports_a_read_only_out_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        rc, _, err = _cli("minibert.pretrain", *SMALL, "--out", str(locked / "run"))
        _assert_refused(rc, err, "cannot write there (Permission denied)")
    finally:
        os.chmod(locked, 0o755)


def test_pretrain_keeps_a_users_folders_in_its_run_and_resumes(tmp_path, capsys):
    from minibert import pretrain
    out = tmp_path / "run"
    assert pretrain.main(SMALL + ["--steps", "8", "--out", str(out)]) == 0
    # as if killed after step 6: the last checkpoint gone, LATEST at step 6
    shutil.rmtree(out / "step-00000008")
    (out / "LATEST").write_text("step-00000006\n")
    for name in ("step-0-notes", ".tmp-mine", ".old-keep"):
        (out / name).mkdir()
        (out / name / "note.txt").write_text(name)
    capsys.readouterr()
    assert pretrain.main(SMALL + ["--steps", "8", "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "updates/s" in err and "left" in err
    for name in ("step-0-notes", ".tmp-mine", ".old-keep"):
        assert (out / name / "note.txt").read_text() == name
    assert (out / "LATEST").read_text().strip() == "step-00000008"


def test_pretrain_result_is_a_function_of_seed_and_flags(capsys):
    from minibert import pretrain
    lines = []
    for _ in range(2):
        assert pretrain.main(SMALL) == 0
        lines.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert lines[0] == lines[1]
    assert "seconds" not in json.loads(lines[0])


def test_latex_cube_check_errors_are_one_line(tmp_path):
    (tmp_path / "latin1.tex").write_bytes("\\begin{array}{c} caf\xe9 \\end{array}".encode("latin-1"))
    (tmp_path / "empty.tex").write_text("no drawing here")
    cases = [(["check", str(tmp_path / "missing.tex")], "missing.tex: no such file"),
             (["check", str(tmp_path / "latin1.tex")], "latin1.tex: not UTF-8 text"),
             (["check", str(tmp_path / "empty.tex")], "empty.tex: tex: expected \\begin{array}"),
             (["check"], "the following arguments are required: file"),
             (["--symmetry", "48"], "argument --symmetry: expected an int in 0..47, got '48'"),
             (["--out", str(tmp_path / "latin1.tex")], "exists and is not a folder")]
    for args, fragment in cases:
        rc, _, err = _cli("latex_cube", *args)
        _assert_refused(rc, err, fragment)
    rc, _, err = _cli("latex_cube", "check", str(tmp_path / "missing.tex"), "--debug")
    assert rc == 1 and "Traceback" in err                             # the traceback, when asked for


def test_latex_cube_help_shows_every_subcommand():
    rc, out, _ = _cli("latex_cube", "--help")
    assert rc == 0 and "check FILE" in out and "subcommands:" in out
