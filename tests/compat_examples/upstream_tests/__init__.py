"""uge-drmaa2's own test suite (``test/`` of its sdist), ported to pydrmaa2.drmaa2: see ../INDEX.md."""
