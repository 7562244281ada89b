"""uge-drmaa2's ``drmaa2.job_array``: JobArray, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import JobArray

__all__ = ["JobArray"]

settle(__name__)
