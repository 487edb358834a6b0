"""Faults: crashes between the files of a save, damaged and tampered checkpoints, folders that belong to
someone else. Each case asserts what is left on disk (nothing of the user's deleted, the old folder or the
new one whole, never a mix) or the exact error (a ValueError naming the file and the field)."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import minibert.train_state as ts
from minibert.checkpoint import (MANIFEST, check_folder, load_pretrained, save_folder,
                                 save_pretrained)
from minibert.config import BertConfig
from minibert.model import init_params
from minibert.optim import AdamW
from minibert.safetensors import read_safetensors
from minibert.vocab import save_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
CFG = BertConfig(vocab_size=12, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=16, max_position_embeddings=16)
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(7)]
FP = {"config": "tiny", "data": {"rows": 10}}


def _tree(path):
    """{relative file path: bytes} of everything under path."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            out[os.path.relpath(full, path)] = open(full, "rb").read()
    return out


def _flip_byte(path, offset=-3):
    with open(path, "r+b") as f:
        f.seek(offset, os.SEEK_END)
        b = f.read(1)
        f.seek(offset, os.SEEK_END)
        f.write(bytes([b[0] ^ 1]))


# ---- training checkpoints: what is pruned, what is resumed --------------------------------------------

def _parts(seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(CFG, rng)
    return params, AdamW(params, lr=1e-2, warmup_steps=1, total_steps=10), rng


def _save(run_dir, step, params, opt, rng, keep=2):
    return ts.save_train_state(run_dir, config=CFG, params=params, optimizer=opt, rng=rng, step=step,
                               data_position={"epoch": 0, "index": step}, fingerprint=FP, keep=keep)


def test_pruning_never_deletes_folders_it_did_not_write(tmp_path):
    params, opt, rng = _parts()
    theirs = ["step-0-notes", ".tmp-mine", ".old-backup", "step-00000001",       # a user's, despite the name
              ".tmp-step-00000002-99999"]
    for name in theirs:
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text("keep me")
    ours = tmp_path / ".tmp-step-00000007-99998"                                 # a crashed write of ours
    ours.mkdir()
    (ours / "model.safetensors.tmp99998").write_bytes(b"half")
    for step in (3, 4, 5, 6):
        _save(tmp_path, step, params, opt, rng)
    for name in theirs:
        assert (tmp_path / name / "notes.txt").read_text() == "keep me", name
    assert not ours.exists()
    assert sorted(n for n in os.listdir(tmp_path) if ts.STEP_RE.fullmatch(n)) == [
        "step-00000001", "step-00000005", "step-00000006"]


def test_a_users_folder_with_a_checkpoint_name_is_never_replaced(tmp_path):
    params, opt, rng = _parts()
    (tmp_path / "step-00000004").mkdir()
    (tmp_path / "step-00000004" / "results.csv").write_text("a,b\n")
    with pytest.raises(FileExistsError, match="step-00000004 exists and holds files that are not"):
        _save(tmp_path, 4, params, opt, rng)
    assert (tmp_path / "step-00000004" / "results.csv").read_text() == "a,b\n"


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_says_so(tmp_path, capsys):
    params, opt, rng = _parts()
    _save(tmp_path, 3, params, opt, rng)
    newest = _save(tmp_path, 4, params, opt, rng)
    _flip_byte(os.path.join(newest, "model.safetensors"))
    st = ts.load_train_state(tmp_path, FP)
    assert st["step"] == 3 and st["path"].endswith("step-00000003")
    assert [os.path.basename(f) for f, _ in st["skipped"]] == ["step-00000004"]
    err = capsys.readouterr().err
    assert "skipped damaged checkpoint" in err and "step-00000004" in err and "sha256" in err
    # both damaged: a clear error that gives each reason
    _flip_byte(os.path.join(st["path"], "optimizer.safetensors"))
    with pytest.raises(ValueError, match="no intact checkpoint.*step-00000004.*sha256.*step-00000003.*sha256"):
        ts.load_train_state(tmp_path, FP)


def test_resume_after_a_damaged_latest_pointer_uses_the_folders(tmp_path, capsys):
    params, opt, rng = _parts()
    _save(tmp_path, 3, params, opt, rng)
    (tmp_path / "LATEST").write_bytes(b"\xff\xfe garbage")
    st = ts.load_train_state(tmp_path, FP)
    assert st["step"] == 3
    assert "LATEST" in st["skipped"][0][0]


def _tamper(ckpt, edit):
    path = os.path.join(ckpt, "state.json")
    state = json.load(open(path))
    edit(state)
    json.dump(state, open(path, "w"))


@pytest.mark.parametrize("edit, field", [
    (lambda s: s.update(sha256={}), "sha256 must map exactly"),
    (lambda s: s["sha256"].pop("model.safetensors"), "sha256 must map exactly"),
    (lambda s: s.update(step="12"), "step must be a non-negative int"),
    (lambda s: s.update(step=-1), "step must be a non-negative int"),
    (lambda s: s.pop("data_position"), "data_position must be"),
    (lambda s: s["data_position"].update(epoch=None), "data_position must be"),
    (lambda s: s["optimizer"].pop("options"), "optimizer must be"),
    (lambda s: s["optimizer"]["options"].update(betas=[0.9]), "optimizer must be"),
    (lambda s: s["optimizer"]["options"].update(nonsense=1), "optimizer options or rng state rejected"),
    (lambda s: s.update(rng={"bit_generator": "PCG64", "state": "x"}), "optimizer options or rng state rejected"),
    (lambda s: s.update(ema={"step": 1, "decay": 2.0}), "ema must be"),
    (lambda s: s.update(fingerprint=[1]), "rng and fingerprint must be objects"),
])
def test_tampered_state_json_is_a_clear_value_error(tmp_path, edit, field):
    params, opt, rng = _parts()
    ckpt = _save(tmp_path, 3, params, opt, rng)
    _tamper(ckpt, edit)
    with pytest.raises(ValueError, match=field):
        ts.load_train_state(tmp_path, FP)


def test_an_empty_sha256_map_does_not_turn_the_check_off(tmp_path):
    params, opt, rng = _parts()
    ckpt = _save(tmp_path, 3, params, opt, rng)
    _flip_byte(os.path.join(ckpt, "model.safetensors"))
    _tamper(ckpt, lambda s: s.update(sha256={}))
    with pytest.raises(ValueError, match="sha256 must map exactly"):
        ts.load_train_state(tmp_path, FP)


@pytest.mark.parametrize("name", ["state.json", "config.json", MANIFEST, "tokenizer_config.json"])
def test_json_nested_100000_deep_is_a_clear_value_error(tmp_path, name):
    deep = "[" * 100_000 + "]" * 100_000
    folder = tmp_path / "model"
    if name == "state.json":
        params, opt, rng = _parts()
        ckpt = _save(tmp_path, 3, params, opt, rng)
        open(os.path.join(ckpt, name), "w").write(deep)
        with pytest.raises(ValueError, match=r"state\.json is unreadable \(RecursionError"):
            ts.load_train_state(tmp_path, FP)
    elif name == MANIFEST:
        save_pretrained(str(folder), CFG, init_params(CFG, np.random.default_rng(0)))
        (folder / name).write_text(deep)
        with pytest.raises(ValueError, match=r"manifest\.json: unreadable \(RecursionError"):
            load_pretrained(str(folder))
    elif name == "config.json":
        folder.mkdir()
        (folder / name).write_text(deep)
        with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
            load_pretrained(str(folder))
    else:
        from minibert.tokenizer import Tokenizer
        folder.mkdir()
        save_vocab(TOKENS, folder / "vocab.txt")
        (folder / name).write_text(deep)
        with pytest.raises(ValueError, match=r"tokenizer_config\.json: expected a JSON object"):
            Tokenizer.from_pretrained(str(folder))


def test_tensor_shape_of_2_to_the_64_names_file_and_tensor(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**64, 0], "data_offsets": [0, 0]}}).encode()
    path = tmp_path / "huge.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ValueError, match=r"huge\.safetensors: tensor 'w': shape .* too large"):
        read_safetensors(str(path))


# ---- model folders: all at once, checked when loaded --------------------------------------------------

def _writers(params, tokens=TOKENS):
    return {"vocab.txt": lambda p: save_vocab(tokens, p)}


def test_save_pretrained_writes_one_consistent_folder(tmp_path):
    params = init_params(CFG, np.random.default_rng(0))
    folder = tmp_path / "model"
    save_pretrained(str(folder), CFG, params, extra_files=_writers(params))
    assert sorted(os.listdir(folder)) == ["config.json", MANIFEST, "model.safetensors", "vocab.txt"]
    assert check_folder(str(folder)) == ["config.json", "model.safetensors", "vocab.txt"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    cfg, loaded = load_pretrained(str(folder))
    for k in params:
        np.testing.assert_array_equal(loaded[k], params[k], err_msg=k)
    # saving again replaces the folder this package wrote
    save_pretrained(str(folder), CFG, params, extra_files=_writers(params))
    assert check_folder(str(folder)) is not None


def test_crash_between_the_files_leaves_the_old_folder_whole(tmp_path):
    params = init_params(CFG, np.random.default_rng(0))
    folder = tmp_path / "model"
    save_pretrained(str(folder), CFG, params, extra_files=_writers(params))
    before = _tree(folder)

    def crash(path):
        raise OSError("disk full (simulated) between the weights and the vocabulary")

    with pytest.raises(OSError, match="disk full"):
        save_pretrained(str(folder), CFG, params, extra_files={"vocab.txt": crash})
    assert _tree(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["model"]
    load_pretrained(str(folder))


CHILD_KILL = """
import os, signal, sys
import numpy as np
from minibert.checkpoint import save_pretrained
from minibert.config import BertConfig
from minibert.model import init_params
from minibert.vocab import save_vocab
cfg = BertConfig(vocab_size=12, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                 max_position_embeddings=16)
params = init_params(cfg, np.random.default_rng(int(sys.argv[2])))
def killed(path):                                # the weights and config are written; die before the vocab
    os.kill(os.getpid(), signal.SIGKILL)
extra = {"vocab.txt": killed if sys.argv[3] == "kill" else (lambda p: save_vocab(%r, p))}
if sys.argv[3] == "kill-between-renames":        # the old folder renamed aside, the new one not yet in place
    real_replace = os.replace
    def replace(src, dst):
        if os.path.basename(str(src)).startswith(".model.tmp-"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace
save_pretrained(sys.argv[1], cfg, params, extra_files=extra)
""" % (TOKENS,)


def test_sigkill_between_the_files_leaves_old_or_nothing(tmp_path):
    folder = str(tmp_path / "model")
    run = lambda seed, how: subprocess.run([sys.executable, "-c", CHILD_KILL, folder, str(seed), how],  # noqa
                                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    proc = run(0, "kill")                                          # first save: killed
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(folder)                              # nothing half-made at the path
    with pytest.raises(FileNotFoundError, match="no folder at"):
        load_pretrained(folder)
    assert run(0, "ok").returncode == 0
    before = _tree(folder)
    assert run(1, "kill").returncode == -signal.SIGKILL             # replacing it: killed
    assert _tree(folder) == before                                 # the old folder, whole
    check_folder(folder)
    load_pretrained(folder)
    # the first killed run's leftover went with the next save; the second's is there until the next one
    assert len([n for n in os.listdir(tmp_path) if n.startswith(".model.tmp-")]) == 1

    assert run(2, "kill-between-renames").returncode == -signal.SIGKILL
    assert not os.path.exists(folder)                              # only the folder renamed aside holds it
    with pytest.raises(FileNotFoundError, match="interrupted, the previous one is .model.old-"):
        load_pretrained(folder)
    gone = subprocess.Popen([sys.executable, "-c", ""])            # a process id that has ended
    gone.wait()
    stranger = tmp_path / f".model.tmp-{gone.pid}"                 # someone else's folder, with our pattern
    stranger.mkdir()
    (stranger / "keep.txt").write_text("not ours")
    assert run(3, "ok").returncode == 0                            # the next save recovers, then replaces
    assert sorted(os.listdir(tmp_path)) == [stranger.name, "model"]
    assert (stranger / "keep.txt").read_text() == "not ours"
    load_pretrained(folder)


def test_a_folder_whose_files_changed_is_refused_naming_the_file(tmp_path):
    params = init_params(CFG, np.random.default_rng(0))
    folder = tmp_path / "model"
    save_pretrained(str(folder), CFG, params, extra_files=_writers(params))
    (folder / "vocab.txt").write_text("\n".join(TOKENS[:-1] + ["other"]) + "\n")   # a vocab from another run
    with pytest.raises(ValueError, match=r"vocab\.txt does not match the size and sha256"):
        load_pretrained(str(folder))
    os.remove(folder / "vocab.txt")
    with pytest.raises(ValueError, match=r"vocab\.txt is missing; the folder's manifest lists it"):
        load_pretrained(str(folder))


def test_a_vocabulary_larger_than_the_embedding_is_refused(tmp_path):
    params = init_params(CFG, np.random.default_rng(0))
    folder = tmp_path / "model"
    save_pretrained(str(folder), CFG, params, extra_files=_writers(params, TOKENS + ["extra1", "extra2"]))
    with pytest.raises(ValueError, match=r"vocab\.txt has 14 tokens but the model's embedding has 12 rows"):
        load_pretrained(str(folder))


def test_existing_folders_of_others_are_never_overwritten(tmp_path):
    params = init_params(CFG, np.random.default_rng(0))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="did not write .thesis.tex"):
        save_pretrained(str(theirs), CFG, params)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        save_folder(str(tmp_path / "afile"), {"a.txt": lambda p: open(p, "w").close()})
    ours = tmp_path / "ours"
    save_pretrained(str(ours), CFG, params)
    (ours / "added-by-hand.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="manifest does not list .added-by-hand.txt"):
        save_pretrained(str(ours), CFG, params)
    assert (theirs / "thesis.tex").read_text() == "years of work"
    assert (ours / "added-by-hand.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    save_pretrained(str(tmp_path / "empty"), CFG, params)           # an empty folder is fine
    assert check_folder(str(tmp_path / "empty")) == ["config.json", "model.safetensors"]
