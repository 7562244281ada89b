"""pydrmaa2.aio: the DRMAA2 API awaited on asyncio, over the same store, trackers and agent.

Every call that can block is a coroutine (``await js.run_job(t)``, ``await job.wait_terminated()``,
``await job.state``); thousands of waits share one agent connection and one look thread per
manager; ``async for n in js.events()`` yields the state changes as they happen.
"""

from ._events import EventStream
from .jobs import AsyncJob, AsyncJobArray, AsyncReservation
from .session import (
    AsyncJobSession,
    AsyncMonitoringSession,
    AsyncReservationSession,
    AsyncSessionManager,
)

__all__ = ["AsyncJob", "AsyncJobArray", "AsyncJobSession", "AsyncMonitoringSession",
           "AsyncReservation", "AsyncReservationSession", "AsyncSessionManager", "EventStream"]
