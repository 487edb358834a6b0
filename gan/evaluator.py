"""The Fashion-MNIST evaluator: the classifier trained once, saved, reused; FID, coverage and their floors.

An evaluator is the classifier's parameters (gan/classifier.py), its test accuracy, and the Gaussian of
its features over the 60,000 training images (the reference every FID here is measured against). It is
saved as one .npz file (no pickle) in a cache folder, named by its training settings, and loaded from
there on the next run: `python -m gan evaluator` trains it (about 4,000 updates, minutes on one core)
and prints the floors and ceilings that give the FIDs meaning:

    test set      the 10,000 test images: what real, unseen images score (the floor a generator aims at)
    train subset  10,000 training images: the floor from the sample size alone
    pixel Gaussian 10,000 draws of the Gaussian fitted to the training pixels (gan/fid.py)
    noise         10,000 images of uniform noise in [-1, 1] (the ceiling)
"""
import json
import os
from dataclasses import dataclass

import numpy as np

from . import conv_fast
from .classifier import N_CLASSES, classifier_forward, classify, to_inputs, train_classifier
from .fid import class_fractions, fid_from_features, gaussian_stats, pixel_gaussian_samples
from .idx import load_fashion_mnist

FORMAT = 1                     # bump when the classifier or the file changes: old files are retrained
# n_ref training images give the reference Gaussian, n_test test images the accuracy (None: all)
FULL = dict(steps=4000, batch=64, lr=1e-3, seed=0, n_ref=None, n_test=None)
QUICK = dict(steps=150, batch=64, lr=2e-3, seed=0, n_ref=5000, n_test=2000)


def default_cache():
    """$XDG_CACHE_HOME/gan, else ~/.cache/gan."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gan")


@dataclass
class Evaluator:
    params: dict
    ref_mu: np.ndarray             # (128,) mean of the training images' features
    ref_cov: np.ndarray            # (128, 128) their covariance
    accuracy: float                # on the 10,000 test images
    test_fid: float                # FID of the test images' features: the floor
    settings: dict
    path: str = ""

    def features(self, images):
        """images (N, 1, 28, 28) float32 in [-1, 1] -> features (N, 128), predictions (N,)."""
        return classify(self.params, images, conv_fast)

    def score(self, images):
        """FID against the training set, the class shares and the smallest one, for images in [-1, 1]."""
        feats, preds = self.features(images)
        fractions = class_fractions(preds, N_CLASSES)
        return {"fid": fid_from_features(feats, (self.ref_mu, self.ref_cov)),
                "class_min_fraction": float(fractions.min()),
                "class_fractions": [round(float(f), 4) for f in fractions]}


def evaluator_path(cache_dir, settings):
    s = settings
    name = f"fashion-classifier-v{FORMAT}-steps{s['steps']}-batch{s['batch']}-lr{s['lr']:g}-seed{s['seed']}"
    if s["n_ref"] is not None or s["n_test"] is not None:
        name += f"-ref{s['n_ref']}-test{s['n_test']}"
    return os.path.join(cache_dir, name + ".npz")


def save_evaluator(path, ev):
    """One .npz (allow_pickle=False readable): the parameters, the reference Gaussian, a JSON string."""
    meta = json.dumps({"format": FORMAT, "accuracy": ev.accuracy, "test_fid": ev.test_fid,
                       "settings": ev.settings})
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"                 # written whole, then renamed: never half a file
    np.savez(tmp, **{f"param.{k}": v for k, v in ev.params.items()}, ref_mu=ev.ref_mu, ref_cov=ev.ref_cov,
             meta=np.array(meta))
    os.replace(tmp, path)


def load_evaluator(path):
    """The Evaluator saved at path; ValueError naming the file when it is not one of ours."""
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            params = {k[len("param."):]: f[k] for k in f.files if k.startswith("param.")}
            ref_mu, ref_cov = f["ref_mu"], f["ref_cov"]
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: not an evaluator file ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT \
            or not {"accuracy", "test_fid", "settings"} <= meta.keys():
        raise ValueError(f"{path}: not an evaluator file of format {FORMAT} (meta: {str(meta)[:80]})")
    probe = np.zeros((1, 1, 28, 28), np.float32)
    try:
        classifier_forward(params, probe)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: the classifier's parameters do not fit ({err})") from None
    return Evaluator(params, ref_mu, ref_cov, float(meta["accuracy"]), float(meta["test_fid"]),
                     meta["settings"], path)


def build_evaluator(settings, data_dir=None, progress=None):
    """Train the classifier with `settings` (steps, batch, lr, seed) and measure it: an Evaluator."""
    images, labels = load_fashion_mnist("train", data_dir)
    test_images, test_labels = load_fashion_mnist("test", data_dir)
    x, x_test = to_inputs(images), to_inputs(test_images)
    log = progress or (lambda msg: None)
    params = train_classifier(x, labels.astype(np.int64), settings["steps"],
                              np.random.default_rng([settings["seed"], 20]), batch=settings["batch"],
                              lr=settings["lr"], conv=conv_fast,
                              progress=lambda step, loss: log(f"classifier update {step}/{settings['steps']}: "
                                                              f"loss {loss:.4f}"))
    n_test = settings["n_test"] or len(x_test)
    test_feats, test_pred = classify(params, x_test[:n_test], conv_fast)
    feats, _ = classify(params, x[:settings["n_ref"] or len(x)], conv_fast)
    mu, cov = gaussian_stats(feats)
    return Evaluator(params, mu, cov, float((test_pred == test_labels[:n_test]).mean()),
                     fid_from_features(test_feats, (mu, cov)), dict(settings))


def get_evaluator(cache_dir, quick=False, data_dir=None, progress=None):
    """The cached evaluator for the full (or quick) settings, trained and saved when missing."""
    settings = QUICK if quick else FULL
    path = evaluator_path(cache_dir, settings)
    log = progress or (lambda msg: None)
    if os.path.exists(path):
        ev = load_evaluator(path)
        log(f"evaluator: {path} (test accuracy {ev.accuracy:.4f})")
        return ev
    log(f"evaluator: training the classifier ({settings['steps']} updates), to be saved in {path}")
    ev = build_evaluator(settings, data_dir, progress)
    save_evaluator(path, ev)
    ev.path = path
    log(f"evaluator: test accuracy {ev.accuracy:.4f}, saved in {path}")
    return ev


def floors(ev, data_dir=None, n=10000, seed=0, n_fit=None):
    """The scores of the reference points (see the module docstring): a dict name -> ev.score(...).

    n: images per point   n_fit: training images the pixel Gaussian is fitted to (None: all 60,000)
    """
    rng = np.random.default_rng([seed, 21])
    train, _ = load_fashion_mnist("train", data_dir)
    test, _ = load_fashion_mnist("test", data_dir)
    x = to_inputs(train)
    subset = x[rng.choice(len(x), n, replace=False)]
    return {"test_set": ev.score(to_inputs(test)[:n]),
            "train_subset": ev.score(subset),
            "pixel_gaussian": ev.score(pixel_gaussian_samples(x[:n_fit or len(x)], n, rng)),
            "noise": ev.score(rng.uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32))}
