#!/usr/bin/env bash
# Set up pydrmaa2 in .venv and run the demo: a throttled job array on the process tracker.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/python examples/demo.py "$@"
