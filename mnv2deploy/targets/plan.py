"""Which targets an export (or the main job) runs, from the registry and each target's own capabilities."""

from __future__ import annotations

from typing import Any

from ..errors import MissingToolError, UsageError
from . import TARGETS, get_target
from .base import ExportRequest, option_key, option_label

Skipped = dict[str, str]  # {"target": name, "reason": why}


def plan_targets(target: str) -> tuple[list[str], list[Skipped]]:
    """The targets to export and the ones skipped (``all`` only: not available here) with why."""
    if target != "all":
        reason = get_target(target).unavailable_reason()
        if reason:
            raise MissingToolError(f"target {target} cannot export here: {reason}",
                                   "install what it names, or choose another --target")
        return [target], []
    chosen, skipped = [], []
    for name, t in TARGETS.items():
        reason = t.unavailable_reason()
        if reason:
            skipped.append({"target": name, "reason": reason})
        else:
            chosen.append(name)
    return chosen, skipped


def accepting(names: list[str], request: ExportRequest) -> tuple[list[str], list[Skipped]]:
    """With ``all``: the targets that can take the request's options; the others skipped with the reason."""
    kept, skipped = [], []
    for name in names:
        reason = get_target(name).unsupported(request)
        if reason:
            skipped.append({"target": name, "reason": reason})
        else:
            kept.append(name)
    return kept, skipped


def known_options() -> dict[str, tuple[str, ...]]:
    """``--option`` names per target, for targets that take any."""
    return {name: t.option_names for name, t in TARGETS.items() if t.option_names}


def check_option_names(options: dict[str, Any]) -> None:
    """An option no registered target knows is a typo: a usage error, even with ``--target all``."""
    known = {o for names in known_options().values() for o in names}
    unknown = sorted(k for k in options if option_key(k) not in known)
    if unknown:
        raise UsageError(f"no target has option {', '.join(unknown)}",
                         f"options: {', '.join(sorted(map(option_label, known))) or 'none'}")
