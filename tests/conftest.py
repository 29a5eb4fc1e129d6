"""Hypothesis profiles for the property and fuzz tests.

``ci`` (the default) runs a few hundred examples a property, enough to catch the usual breakage in
well under a minute for the whole fuzz set; ``long`` runs thousands, for a night or before a release:

    python -m pytest tests/test_fuzz_*.py --hypothesis-profile=long

No deadline in either: the test machines are shared and loaded, so a slow example is not a failure
(a hang still is: pytest-timeout ends it). ``HYPOTHESIS_PROFILE`` picks the default profile too.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SHARED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

settings.register_profile("ci", max_examples=200, **_SHARED)
settings.register_profile("long", max_examples=5_000, **_SHARED)
# The pytest option --hypothesis-profile, read after this file is imported, overrides this default.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
