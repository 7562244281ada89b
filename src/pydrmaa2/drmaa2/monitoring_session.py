"""uge-drmaa2's ``drmaa2.monitoring_session``: MonitoringSession, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._sessions import MonitoringSession

__all__ = ["MonitoringSession"]

settle(__name__)
