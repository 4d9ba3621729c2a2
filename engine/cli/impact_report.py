"""The impact report: one JSON document, rendered as text (a table) or markdown (for a PR)."""
from __future__ import annotations

from typing import Any

from engine.history.impact import KINDS, Job, Sample, Tally
from engine.history.ticket_sources import Source, location

SHORT = {"allowed_to_denied": "allow→deny", "denied_to_allowed": "deny→allow",
         "denial_codes_changed": "codes", "advice_changed": "advice", "refund_types_changed": "refund types",
         "max_refund_amount_changed": "max amount", "reasons_changed": "reasons",
         "reason_terms_changed": "reason terms"}
SHOWN_PROBLEMS = 100


def _samples(samples: list[Sample], sources: list[Source]) -> list[dict[str, Any]]:
    return [{"ticket_id": ticket_id, "at": location(sources[s].kind, sources[s].path, n)} for s, n, ticket_id in samples]


def problem_location(problem: dict[str, Any]) -> str:
    return location(problem["kind"], problem["file"], problem["number"])


def to_json(job: Job, sources: list[Source], tally: Tally, seconds: float, cluster: str) -> dict[str, Any]:
    actors: dict[str, Any] = {actor: {} for actor in job.actors}
    unexplained = []
    for (actor, action, kind), cell in sorted(tally.cells.items(), key=lambda i: (i[0][0], i[0][1], KINDS.index(i[0][2]))):
        actors.setdefault(actor, {}).setdefault(action, {})[kind] = {
            "count": cell.count, "explained_by": dict(sorted(cell.by_change.items())),
            "unexplained": cell.unexplained, "samples": _samples(cell.samples, sources)}
        if cell.unexplained:
            unexplained.append({"actor": actor, "action": action, "kind": kind, "count": cell.unexplained,
                                "samples": _samples(cell.unexplained_samples, sources)})
    bad = len({(p["source"], p["number"]) for p in tally.problems})
    return {
        "from": job.old, "to": job.new, "tickets_files": [s.path for s in sources],
        "at": job.at or "each ticket's latest event + 1h",
        "lines": tally.lines, "tickets": tally.tickets, "bad_lines": bad,
        "problems": [dict(p, at=problem_location(p)) for p in tally.problems[:SHOWN_PROBLEMS]],
        "undecidable": tally.undecidable, "compared": tally.compared,
        "declared_changes": [{"version": c.version, "id": c.id, "affects_actions": sorted(c.actions),
                              "scenarios": sorted(c.scenarios) if c.scenarios is not None else None}
                             for c in job.changes],
        "actors": actors, "unexplained": unexplained,
        "by_scenario": dict(sorted(tally.by_scenario.items())), "by_type": dict(sorted(tally.by_type.items())),
        "cluster": cluster, "seconds": round(seconds, 3),
        "tickets_per_second": round(tally.lines / seconds, 1) if seconds else None,
    }


def _headline(report: dict[str, Any]) -> str:
    return (f"impact {report['from']} → {report['to']}: {report['tickets']} tickets "
            f"({report['bad_lines']} bad lines, undecidable under {report['from']}: "
            f"{report['undecidable']['from']}, under {report['to']}: {report['undecidable']['to']}), "
            f"at {report['at']}")


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for actor, actions in report["actors"].items():
        for action, kinds in actions.items():
            samples = sorted({s["ticket_id"] for entry in kinds.values() for s in entry["samples"]})[:3]
            explained = sorted({c for entry in kinds.values() for c in entry["explained_by"]})
            unexplained = sum(entry["unexplained"] for entry in kinds.values())
            rows.append([actor, action] + [str(kinds[k]["count"]) if k in kinds else "" for k in KINDS]
                        + [", ".join(explained) + (f" + {unexplained} UNEXPLAINED" if unexplained else ""),
                           ", ".join(samples)])
    return rows


def _breakdown(report: dict[str, Any], key: str) -> list[list[str]]:
    return [[name, str(counts.get("tickets", 0)), str(counts.get("changed", 0))]
            + [str(counts[k]) if k in counts else "" for k in KINDS]
            for name, counts in report[key].items()]


HEADER = ["actor", "action"] + [SHORT[k] for k in KINDS] + ["explained by", "samples"]
BREAKDOWN = ["tickets", "changed"] + [SHORT[k] for k in KINDS]


def _table(header: list[str], rows: list[list[str]], left: int, tail: int = 0) -> list[str]:
    """Text columns (the first `left`, the last `tail`) left-aligned, counts right-aligned."""
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    text = set(range(left)) | set(range(len(header) - tail, len(header)))
    return ["  ".join(row[i].ljust(widths[i]) if i in text else row[i].rjust(widths[i])
                      for i in range(len(row))).rstrip() for row in [header] + rows]


def to_text(report: dict[str, Any]) -> str:
    lines = [_headline(report)]
    rows = _rows(report)
    if not rows:
        lines.append("no decision changed")
    else:
        lines += _table(HEADER, rows, 2, 2)
        for name, key in (("scenario", "by_scenario"), ("type", "by_type")):
            lines.append("")
            lines += _table([name] + BREAKDOWN, _breakdown(report, key), 1)
    for item in report["unexplained"]:
        lines.append(f"UNEXPLAINED {item['actor']} {item['action']} {SHORT[item['kind']]}: {item['count']} "
                     f"(e.g. {', '.join(s['ticket_id'] + ' at ' + s['at'] for s in item['samples'][:3])})")
    lines.append(f"{report['seconds']} s, {report['tickets_per_second']} tickets/s on {report['cluster']}")
    return "\n".join(lines) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])


def to_markdown(report: dict[str, Any]) -> str:
    lines = [f"### Impact {report['from']} → {report['to']}", "",
             f"{report['tickets']} tickets replayed ({report['bad_lines']} bad lines skipped; undecidable under "
             f"{report['from']}: {report['undecidable']['from']}, under {report['to']}: {report['undecidable']['to']}); "
             f"asked at {report['at']}.", ""]
    rows = _rows(report)
    if not rows:
        lines.append("No decision changed.")
    else:
        lines += _md_table(HEADER, rows) + ["", "#### Per scenario", ""]
        lines += _md_table(["scenario"] + BREAKDOWN, _breakdown(report, "by_scenario"))
        lines += ["", "#### Per ticket type", ""] + _md_table(["type"] + BREAKDOWN, _breakdown(report, "by_type"))
    lines += ["", "#### Unexplained differences", ""]
    if report["unexplained"]:
        lines += [f"- **{u['actor']} `{u['action']}` {SHORT[u['kind']]}**: {u['count']} "
                  f"(e.g. {', '.join('`' + s['ticket_id'] + '`' for s in u['samples'][:3])})"
                  for u in report["unexplained"]]
    else:
        lines.append("None: every difference is explained by a declared change.")
    return "\n".join(lines) + "\n"
