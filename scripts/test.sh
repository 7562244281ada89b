#!/usr/bin/env bash
# Set up everything (engines, test images, .venv) and run the whole test suite, engines included.
# Extra arguments go to pytest. PYDRMAA2_ENGINES overrides the engines to start.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINES=${PYDRMAA2_ENGINES:-"docker podman containerd slurm"}
# shellcheck disable=SC2086
bash scripts/engines.sh $ENGINES
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[all,dev,docs]'
.venv/bin/ruff check src tests bench examples docs
exec .venv/bin/pytest tests -q -rs "$@"
