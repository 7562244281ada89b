"""uge-drmaa2's ``drmaa2.reservation_template``: ReservationTemplate, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import ReservationTemplate

__all__ = ["ReservationTemplate"]

settle(__name__)
