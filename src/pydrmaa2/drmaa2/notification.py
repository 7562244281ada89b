"""uge-drmaa2's ``drmaa2.notification``: Notification, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import Notification

__all__ = ["Notification"]

settle(__name__)
