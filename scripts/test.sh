#!/usr/bin/env bash
# Set up everything (engines, test images, .venv) and run the whole test suite, engines included,
# against pydrmaa2 as users get it: the sdist and the wheel are built into dist/ and the wheel (not
# the checkout) is installed into .venv with every extra; pytest then imports that installed copy
# (tests/conftest.py fails the run if it is src/ instead).
# Extra arguments go to pytest. PYDRMAA2_ENGINES overrides the engines to start; empty or "none"
# starts none (those already running are used as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINES=${PYDRMAA2_ENGINES-"docker podman containerd slurm"}
if [[ -n ${ENGINES// /} && $ENGINES != none ]]; then
    # shellcheck disable=SC2086
    bash scripts/engines.sh $ENGINES
fi
pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
python3 -m venv .venv
"${pip[@]}" install 'build>=1.2'
# An isolated build: `build` installs setuptools into a throw-away environment from the index pip
# is configured with (a local mirror works: no --no-isolation needed). The wheel is built from the
# sdist, so an incomplete sdist fails here.
mkdir -p dist
rm -f dist/pydrmaa2-*
.venv/bin/python -m build --outdir dist . >dist/build.log 2>&1 || { cat dist/build.log >&2; exit 1; }
wheels=(dist/pydrmaa2-*.whl) sdists=(dist/pydrmaa2-*.tar.gz)
WHEEL=$PWD/${wheels[0]} SDIST=$PWD/${sdists[0]}
# The wheel replaces whatever pydrmaa2 .venv had (an editable install of the checkout, or an older
# wheel of the same version, which pip would keep).
if "${pip[@]}" show pydrmaa2 >/dev/null 2>&1; then "${pip[@]}" uninstall -y pydrmaa2; fi
"${pip[@]}" install "${WHEEL}[all,dev,docs]"
.venv/bin/ruff check src tests bench examples docs
# tests/test_packaging.py installs this wheel into fresh virtualenvs and inspects both files.
export PYDRMAA2_TEST_INSTALLED=1 PYDRMAA2_WHEEL=$WHEEL PYDRMAA2_SDIST=$SDIST
exec .venv/bin/pytest tests -q -rs "$@"
