"""The security suite uses the integration fixtures for its calls through the sandbox PBX.

Only the fixtures a test asks for: the fuzz tests of this folder need no PBX,
so the integration suite's autouse reset of the PBX is not imported here;
the hostile-calls test asks for a fresh PBX itself (`fresh_pbx`).
"""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401 - fixtures, found by name
    ari,
    callers,
    phones,
    place_call,
    pytest_runtest_makereport,
)
