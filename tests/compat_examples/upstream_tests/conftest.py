"""pydrmaa2's set-up for uge-drmaa2's ported tests (run by tests/test_compat_upstream.py, each
file in its own store): what the tests leave behind is ended and destroyed at the end."""

import gc

from pydrmaa2.drmaa2 import _runtime
from tests.test_compat import _clear_store, _tidy_destroy


def pytest_sessionstart(session):
    # uge-drmaa2's tests drop sessions with jobs running (destroy_on_exit): end those jobs too.
    _tidy_destroy(setattr)


def pytest_sessionfinish(session, exitstatus):
    gc.collect()
    _clear_store(_runtime.manager().home)
