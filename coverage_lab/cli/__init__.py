"""The lab's command groups for `coverage-engine`: sandbox, demo, bench."""
