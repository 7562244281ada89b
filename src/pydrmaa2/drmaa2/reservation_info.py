"""uge-drmaa2's ``drmaa2.reservation_info``: ReservationInfo, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import ReservationInfo

__all__ = ["ReservationInfo"]

settle(__name__)
