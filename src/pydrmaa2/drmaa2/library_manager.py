"""uge-drmaa2's ``drmaa2.library_manager``: LibraryManager, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import LibraryManager

__all__ = ["LibraryManager"]

settle(__name__)
