"""The README runner's world (the emulator with the examples' instances and v2 service) for the docs."""

from __future__ import annotations

from tests.test_readme import readme_world

__all__ = ["readme_world"]
