"""docs/configuration.md documents every key the model accepts."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from coverage_engine.config import CoverageConfig

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text("utf-8")


def _models(tp: Any, seen: set[type[BaseModel]]) -> None:
    """Collect every model class reachable from a type annotation."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp not in seen:
            seen.add(tp)
            for field in tp.model_fields.values():
                _models(field.annotation, seen)
        return
    if typing.get_origin(tp) in (typing.Annotated, typing.Union, types.UnionType, dict, tuple):
        for arg in typing.get_args(tp):
            _models(arg, seen)


def test_every_key_is_in_the_reference() -> None:
    """Each key of each model appears in backticks in docs/configuration.md."""
    models: set[type[BaseModel]] = set()
    _models(CoverageConfig, models)
    keys = {
        field.alias or name
        for model in models
        for name, field in model.model_fields.items()
        if name != "id"
    }
    assert len(keys) > 40
    missing = sorted(k for k in keys if not re.search(rf"`[^`\n]*\b{re.escape(k)}\b[^`\n]*`", DOC))
    assert missing == []
