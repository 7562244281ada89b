"""uge-drmaa2's ``drmaa2.sudo``: Sudo, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import Sudo

__all__ = ["Sudo"]

settle(__name__)
