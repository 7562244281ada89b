"""uge-drmaa2's ``drmaa2.reservation``: Reservation, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import Reservation

__all__ = ["Reservation"]

settle(__name__)
