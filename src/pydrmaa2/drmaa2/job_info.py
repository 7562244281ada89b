"""uge-drmaa2's ``drmaa2.job_info``: JobInfo, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import JobInfo

__all__ = ["JobInfo"]

settle(__name__)
