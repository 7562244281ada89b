#!/usr/bin/env bash
# Build the documentation site into site/ (mkdocs build --strict), or serve it while editing.
# Usage: scripts/docs.sh [build|serve] [extra mkdocs arguments]. Needs .venv with the docs extra:
#   .venv/bin/pip install -e '.[all,docs]'
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1
case "${1:-build}" in
    build) shift $(($# > 0)); exec .venv/bin/mkdocs build --strict -d site "$@" ;;
    serve) shift; exec .venv/bin/mkdocs serve --strict "$@" ;;
    *) echo "usage: scripts/docs.sh [build|serve] [mkdocs arguments]" >&2; exit 2 ;;
esac
