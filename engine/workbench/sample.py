"""The bundled sample corpus the Compare and Draft pages replay, and the replay itself.

The corpus is the example tickets (examples/tickets/) plus a fixed synthetic set
(`engine.history.corpus.generate`, seeded, so every run shows the same numbers), drawn with the
vocabulary of the version it is compared against. Each ticket is asked an hour after its latest
event, as `aftersale impact` does, under an explicitly pinned version on each side.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine.core.errors import EngineError
from engine.core.resources import REPO_ROOT
from engine.core.timeutil import iso, parse_aware
from engine.history.corpus import Vocabulary, generate, latest_time
from engine.history.impact import decision_changes

SYNTHETIC_COUNT = 300
SEED = 13
ACTORS = ("merchant", "buyer")
SAMPLES = 3
EXAMPLES_DIR = REPO_ROOT / "examples" / "tickets"


def example_tickets(directory: Path = EXAMPLES_DIR) -> dict[str, dict[str, Any]]:
    """file stem -> ticket, for the Try page's one-click examples and the corpus."""
    out = {}
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            try:
                out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
    return out


def corpus(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(example_tickets().values()) + list(generate(SYNTHETIC_COUNT, SEED, Vocabulary.from_document(document)))


def _moment(ticket: dict[str, Any]) -> str | None:
    latest = latest_time(ticket)
    return iso(parse_aware(latest) + timedelta(hours=1)) if latest else None


def replay(old_engine: Any, old_version: str, new_engine: Any, new_version: str,
           tickets: list[dict[str, Any]]) -> dict[str, Any]:
    """Per actor and action, how many decisions moved and how (allowed→denied, denied→allowed,
    other denial codes, ...), with a few sample ticket ids each; tickets one side cannot decide
    (a scenario it does not know) are counted, not compared."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    samples: dict[str, list[str]] = {}
    compared = undecidable = 0
    for ticket in tickets:
        at = _moment(ticket)
        try:
            pairs = [(actor, old_engine.decide(ticket, actor, at=at, version=old_version).to_json(),
                      new_engine.decide(ticket, actor, at=at, version=new_version).to_json()) for actor in ACTORS]
        except EngineError:
            undecidable += 1
            continue
        for actor, old, new in pairs:
            compared += 1
            for action, kinds in decision_changes(old, new).items():
                for kind in kinds:
                    by_kind = counts.setdefault(actor, {}).setdefault(action, {})
                    by_kind[kind] = by_kind.get(kind, 0) + 1
                    kept = samples.setdefault(f"{actor}.{action}.{kind}", [])
                    if len(kept) < SAMPLES:
                        kept.append(str(ticket.get("ticket_id")))
    return {"from": old_version, "to": new_version, "tickets": len(tickets), "compared": compared,
            "undecidable": undecidable, "counts": counts, "samples": samples}
