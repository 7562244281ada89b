"""uge-drmaa2's ``drmaa2.version``: Version, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import Version

__all__ = ["Version"]

settle(__name__)
