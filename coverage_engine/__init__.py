"""coverage-engine: a person answers every call to a medical practice, at any hour."""

from __future__ import annotations

__version__ = "0.1.0"
