"""Where a call picks up again after an engine restart, in a plan decided afresh.

A restarted (or another) engine has no memory of the call: it decides the
plan again for the current instant and must find where the call had got to.
The step *index* the call had reached is not enough, because the new plan can
differ from the old one: the configuration was reloaded, or the on-call
handoff passed (operator presence never changes a plan; it is asked as each
step starts). Index 2 of the old plan may be index 1, or nothing, in the new one.

So the call keeps on its channel the *keys* of the steps it has tried, in
order (`COVERAGE_TRIED`). A key names a step by who it reaches, not by where
it sits: `oncall/patel`, `operators/answering`; a person met again later in
the same plan gets `#2`, `#3`... (`operators/answering#2`), so keys are
unambiguous within one plan.

The rule (`resume_index`), with `current` the last key tried:

1. `current` is a step of the new plan: continue there (`finished=False`:
   the step was interrupted, try it again) or right after it (`finished=True`:
   e.g. the caller came back from the queue, that wait is over). Steps before
   it in the new plan are not gone back to.
2. Otherwise: the first step of the new plan whose key was not tried yet.
3. Otherwise (every step of the new plan was tried): the last step, the
   operators. A restart never leaves a caller with nothing to go to.

A caller with no keys at all (the engine stopped before its first step
started) begins the new plan from its first step.
"""

from __future__ import annotations

from collections import Counter

from coverage_engine.plan import Plan

# Keys never contain it: targets are validated ids and SafeNames (no ',').
SEPARATOR = ","


def step_keys(plan: Plan) -> tuple[str, ...]:
    """The stable key of each step of `plan`, in order (see the module docstring)."""
    seen: Counter[str] = Counter()
    keys: list[str] = []
    for step in plan.steps:
        base = f"{step.kind.value}/{step.target}"
        seen[base] += 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return tuple(keys)


def parse_tried(text: str) -> tuple[str, ...]:
    """The keys stored in `COVERAGE_TRIED` (empty text: none)."""
    return tuple(key for key in text.split(SEPARATOR) if key)


def format_tried(keys: tuple[str, ...]) -> str:
    """`keys` as stored in `COVERAGE_TRIED`."""
    return SEPARATOR.join(keys)


def resume_index(plan: Plan, tried: tuple[str, ...], *, finished: bool) -> int:
    """The index of the step of `plan` to continue with; `len(plan.steps)` means none is left.

    None left happens only when the step that finished is the new plan's last
    one (every person was tried): the caller then goes to the dialplan's
    fallback, as it would have without a restart.
    """
    steps = len(plan.steps)
    if steps == 0:  # pragma: no cover - validation guarantees a last step
        return 0
    last = steps - 1
    if not tried:
        return 0
    keys = step_keys(plan)
    current = tried[-1]
    if current in keys:
        index = keys.index(current)
        return index + 1 if finished else index
    done = set(tried)
    for index, key in enumerate(keys):
        if key not in done:
            return index
    return last
