"""The lab: what develops, tests, demonstrates and measures coverage-engine.

The sandbox PBX, the SIPp phones and callers, the engine as a child process,
the fake Asterisk servers of the unit tests, the demo and the benchmarks. It
imports the runtime (`coverage_engine`) freely; the runtime never imports it
(an import-linter contract in pyproject.toml checks that).
"""
