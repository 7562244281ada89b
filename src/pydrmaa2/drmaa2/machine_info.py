"""uge-drmaa2's ``drmaa2.machine_info``: MachineInfo, as in ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import MachineInfo

__all__ = ["MachineInfo"]

settle(__name__)
