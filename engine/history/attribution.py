"""Which declared change explains a difference between two versions' decisions.

The rule is the cross-version regression's (engine/history/regression.py): a difference in an
action is explained by a declared change of a newer version whose `affects_actions` names that
action. Impact replays two versions that need not be adjacent, so every version after the older
one, up to and including the newer one, contributes its declared changes.

One refinement a corpus makes possible (regression cases carry no population): a change whose
`touches` are scenario settings (`scenarios/<id>/...`) plus, at most, the rules that read them
(`rules/...`) is scoped to those scenarios: it explains a difference only on a ticket of one of
them, and the same difference on a ticket of another scenario is listed unexplained (the change
moved tickets it did not declare). A change touching anything else (features/, categories/,
reasons/, timeouts/ ...) may move a ticket of any scenario.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class DeclaredChange:
    version: str
    id: str
    actions: frozenset[str]
    scenarios: frozenset[str] | None  # None: not scoped to scenarios

    @property
    def key(self) -> str:
        return f"{self.version}/{self.id}"

    def explains(self, action: str, scenario: str | None) -> bool:
        if action not in self.actions:
            return False
        return self.scenarios is None or scenario in self.scenarios


def affects(changes: Iterable[Any]) -> dict[str, set[str]]:
    """declared change id → the actions it says it may change (what regression compares with)."""
    out: dict[str, set[str]] = {}
    for item in changes or ():
        if isinstance(item, dict):
            out[str(item.get("id"))] = {a for a in item.get("affects_actions") or () if isinstance(a, str)}
    return out


def _scope(touches: Any) -> frozenset[str] | None:
    paths = [t for t in touches or () if isinstance(t, str)]
    scenarios = frozenset(p.split("/")[1] for p in paths if p.startswith("scenarios/") and p.split("/")[1])
    if not scenarios or not all(p.startswith(("scenarios/", "rules/")) for p in paths):
        return None
    return scenarios


def declared_between(documents: Sequence[tuple[str, Mapping[str, Any]]], old: str, new: str) -> tuple[DeclaredChange, ...]:
    """The declared changes of the versions after the older of `old`/`new` up to the newer one.
    `documents`: (version, raw policy document), oldest first (engine/history/versions.py)."""
    order = [name for name, _ in documents]
    low, high = sorted((order.index(old), order.index(new)))
    out: list[DeclaredChange] = []
    for version, data in documents[low + 1:high + 1]:
        for item in data.get("changes") or ():
            if isinstance(item, dict):
                actions = affects([item]).get(str(item.get("id")), set())
                out.append(DeclaredChange(version, str(item.get("id")), frozenset(actions), _scope(item.get("touches"))))
    return tuple(out)


def explained_by(changes: Iterable[DeclaredChange], action: str, scenario: str | None) -> tuple[str, ...]:
    """`version/id` of every declared change explaining a difference in `action` on a ticket of `scenario`."""
    return tuple(sorted(c.key for c in changes if c.explains(action, scenario)))
