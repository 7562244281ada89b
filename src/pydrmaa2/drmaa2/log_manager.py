"""uge-drmaa2's ``drmaa2.log_manager``: LogManager, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import LogManager

__all__ = ["LogManager"]

settle(__name__)
