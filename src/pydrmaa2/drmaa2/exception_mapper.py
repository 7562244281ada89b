"""uge-drmaa2's ``drmaa2.exception_mapper``: ExceptionMapper, from StatusCode to exception class."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._exceptions import ExceptionMapper

__all__ = ["ExceptionMapper"]

settle(__name__)
