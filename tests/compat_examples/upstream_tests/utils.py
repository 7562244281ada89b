"""pydrmaa2's stand-in for uge-drmaa2's ``test/utils.py`` (not in its sdist): the two helpers
the ported files import, with upstream's defaults."""

import random
import string


def generate_random_string(size: int = 6) -> str:
    """``size`` random ASCII letters and digits."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=size))


def generate_random_int(lower_bound: int = 0, upper_bound: int = 65536) -> int:
    """A random int from ``lower_bound`` to ``upper_bound``, both included."""
    return random.randint(lower_bound, upper_bound)
