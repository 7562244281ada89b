"""uge-drmaa2's ``drmaa2.job_session``: JobSession, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import JobSession

__all__ = ["JobSession"]

settle(__name__)
