"""`needs_data`: skip a test when the Fashion-MNIST IDX files are not installed where gan.idx looks."""
import os

import pytest

from gan.idx import FILES, find_folder


def fashion_available():
    folder = find_folder()
    return all(os.path.exists(os.path.join(folder, stem + ".gz")) or os.path.exists(os.path.join(folder, stem))
               for pair in FILES.values() for stem in pair)


needs_data = pytest.mark.skipif(not fashion_available(), reason="Fashion-MNIST files not installed "
                                "(apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR)")
