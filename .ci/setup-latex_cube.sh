#!/usr/bin/env bash
# Tools for latex_cube's rendering tests (tests/test_latex_cube_render.py):
#   - Debian's chromium, for opening the generated page headless;
#   - Node.js and the npm package mathjax-full (MathJax 3), installed into latex_cube/.node (git-ignored),
#     which the tests use both under Node and as the local MathJax copy the page loads in Chromium.
# Runs from the repository root, as root, before pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

apt-get update
apt-get install -y chromium
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt-get install -y nodejs npm
fi

MATHJAX_VERSION=3.2.2
if [ ! -f latex_cube/.node/node_modules/mathjax-full/package.json ] \
   || ! grep -q "\"version\": \"$MATHJAX_VERSION\"" latex_cube/.node/node_modules/mathjax-full/package.json; then
    mkdir -p latex_cube/.node
    npm install --prefix latex_cube/.node --no-audit --no-fund --loglevel=error "mathjax-full@$MATHJAX_VERSION"
fi

chromium --version
node --version
echo "mathjax-full $(node -p "require('./latex_cube/.node/node_modules/mathjax-full/package.json').version")"
