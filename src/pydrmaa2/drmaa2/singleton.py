"""uge-drmaa2's ``drmaa2.singleton``: Singleton, the base of LibraryManager and LogManager."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import Singleton

__all__ = ["Singleton"]

settle(__name__)
