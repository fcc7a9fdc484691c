"""`python -m coverage_engine` is the same as the `coverage-engine` command."""

from __future__ import annotations

import sys

from coverage_engine.cli import main

sys.exit(main())
