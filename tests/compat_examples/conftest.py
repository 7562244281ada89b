"""The ported upstream test suite runs only through tests/test_compat_upstream.py (one store
per file, on each tracker), never in the repository's own pytest run."""

collect_ignore = ["upstream_tests"]
