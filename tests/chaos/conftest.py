"""The chaos suite uses the integration tests' sandbox fixtures (the PBX, one per session)."""

from tests.integration.conftest import (  # noqa: F401 (fixtures, found by name)
    ari,
    fresh_pbx_state,
    pytest_runtest_makereport,
)
