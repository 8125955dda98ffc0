# Sourced by scripts/demo.sh and scripts/test.sh: make .venv (Python 3.11) with g2d installed.
# Re-installs only when pyproject.toml changes. Set PYTHON to use another interpreter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.g2d-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "==> installing g2d and its dependencies into .venv (first time: a few minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install --quiet -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import g2d, torch, torchvision, librosa, cv2, av, h5py, snakemake, dvc, ruff, mypy" \
        || { echo "installation failed: see the pip output above" >&2; exit 1; }
    rm -f .venv/.g2d-installed-*
    touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
