"""uge-drmaa2's ``drmaa2.byte_string``: ByteString, the str/bytes helper."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._objects import ByteString

__all__ = ["ByteString"]

settle(__name__)
