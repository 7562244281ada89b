"""The SessionManager behind pydrmaa2.drmaa2, and the environment that picks tracker and image.

uge-drmaa2 talks to one Grid Engine cell; here one SessionManager (one store) plays that part,
created on first use for the current ``PYDRMAA2_HOME``.
"""

from __future__ import annotations

import os

from .._store import default_home
from ..session import DEFAULT_CONTACT, SessionManager

__all__ = ["manager", "default_contact", "default_job_category"]

_manager: SessionManager | None = None


def manager() -> SessionManager:
    """The module's SessionManager; a new one when ``PYDRMAA2_HOME`` names another store."""
    global _manager
    home = default_home()
    if _manager is None or _manager.home != home:
        _manager = SessionManager(home)
    return _manager


def default_contact() -> str:
    """The tracker where the API has no contact argument: ``PYDRMAA2_CONTACT``, else process."""
    return os.environ.get("PYDRMAA2_CONTACT") or DEFAULT_CONTACT


def default_job_category() -> str | None:
    """``PYDRMAA2_JOB_CATEGORY``: the job category (image) of templates that name none."""
    return os.environ.get("PYDRMAA2_JOB_CATEGORY") or None
