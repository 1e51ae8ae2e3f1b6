"""Shared test configuration.

Hypothesis profiles, chosen with HCP_TEST_PROFILE:
- "dev" (default): quick local runs;
- "ci": what .ci/run uses; fuzz tests reach their issue-mandated example counts;
- "long": a soak profile for fuzzing by hand (hours, not minutes).
Fuzz tests scale their example counts with fuzz_examples().
"""

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HCP_TEST_PROFILE", "dev")

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(PROFILE)
