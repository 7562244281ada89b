"""uge-drmaa2's ``drmaa2.job_template``: JobTemplate, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import JobTemplate

__all__ = ["JobTemplate"]

settle(__name__)
