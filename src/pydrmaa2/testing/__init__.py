"""Test support: the tracker targets and the conformance behaviours every tracker must pass.

Third-party trackers reuse them: ``from pydrmaa2.testing.conformance import *`` in a test module
with a ``target`` fixture that returns their own ``Target``.
"""
