"""The conformance behaviours of pydrmaa2.testing.conformance, run against every tracker."""

from __future__ import annotations

import pytest

from pydrmaa2.testing.conformance import *  # noqa: F403 - the shared tests and fixtures
from pydrmaa2.testing.targets import TARGETS

from .conftest import require


@pytest.fixture(params=sorted(TARGETS))
def target(request):
    return require(request.param)
