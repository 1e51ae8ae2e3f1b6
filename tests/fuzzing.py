"""Example counts for fuzz tests, by profile (see tests/conftest.py)."""

import os

_SCALE = {"dev": 0.02, "ci": 1.0, "long": 20.0}


def fuzz_examples(ci_count: int) -> int:
    """The example count for a fuzz test whose CI requirement is ci_count."""
    scale = _SCALE.get(os.environ.get("HCP_TEST_PROFILE", "dev"), 1.0)
    return max(50, int(ci_count * scale))
