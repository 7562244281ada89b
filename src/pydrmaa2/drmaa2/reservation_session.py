"""uge-drmaa2's ``drmaa2.reservation_session``: ReservationSession, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import ReservationSession

__all__ = ["ReservationSession"]

settle(__name__)
