"""uge-drmaa2's ``drmaa2.job``: Job, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import Job

__all__ = ["Job"]

settle(__name__)
