"""uge-drmaa2's ``drmaa2.slot_info``: SlotInfo, DRMAA2's slots on one machine."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import SlotInfo

__all__ = ["SlotInfo"]

settle(__name__)
