"""uge-drmaa2's ``drmaa2.queue_info``: QueueInfo, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import QueueInfo

__all__ = ["QueueInfo"]

settle(__name__)
