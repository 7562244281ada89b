"""uge-drmaa2's ``drmaa2.drmaa2_object``: Drmaa2Object, the base of every object."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import Drmaa2Object

__all__ = ["Drmaa2Object"]

settle(__name__)
