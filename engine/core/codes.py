"""Every problem code, listed once, with what it means: the one code list for everything a caller
or the policy team can get wrong (a policy file, a test-case file, a ticket, an action payload, a
platform object, a request body, a command-line argument).

A `Problem` (engine.core.problems) carries one of `PROBLEM_CODES`; an HTTP error answer's own
`code` is one of `HTTP_ERROR_CODES`. docs/problems.md is this list for people, and
tests/test_problem_codes.py keeps the two equal and checks that every code the engine writes down
is listed here. Codes are stable: clients and CI scripts match on them; messages may improve.

Decision denials and check violations (`STATUS_NOT_ALLOWED`, ...) are not problems: they are the
policy's answers, declared in the rules files.
"""
from __future__ import annotations

# -- the shape of any JSON or YAML input (engine.core.jsonschema_errors and the hand-written readers)
SHAPE = {
    "missing_field": "a required field (key) is absent",
    "unknown_field": "a field (key) the schema does not define; the hint names a close one",
    "wrong_type": "a value of the wrong JSON/YAML type (amounts are integers, never strings)",
    "unknown_value": "a value outside its closed list (enum), e.g. an unknown actor or category",
    "bad_format": "a string not in the form its pattern requires",
    "bad_key": "a key not in the form the schema requires for keys",
    "bad_time": "not an ISO 8601 date-time with a UTC offset (or, for the platform, epoch seconds)",
    "naive_time": "a date-time without a UTC offset: the engine never guesses a timezone",
    "time_out_of_range": "a date-time outside the years 1970-2999 (a far-future `at`, or a slip of units)",
    "below_minimum": "a number below its minimum",
    "above_maximum": "a number above its maximum",
    "negative_amount": "an amount (fen) below zero",
    "empty": "an empty string where text is required",
    "too_long": "a string longer than its limit",
    "too_few": "a list or mapping with fewer entries than required",
    "too_many": "a list or mapping with more entries than allowed",
    "duplicate_item": "the same item twice in a list that must not repeat",
    "one_effect": "a rule must have exactly one effect (allow, deny, advise, ...)",
    "not_allowed": "a combination of keys the schema forbids",
    "not_comparable": "a value the rules runtime cannot compare (e.g. an integer beyond ±2^53)",
    "invalid": "any other schema violation (the message is the validator's)",
}

# -- reading files and command-line input (engine.policy.yamlsafe, engine.cli)
FILES = {
    "unreadable": "the file cannot be read (missing, a directory, no permission)",
    "encoding": "the file is not UTF-8",
    "file_too_large": "the file is larger than the loader accepts",
    "yaml_syntax": "YAML that does not parse",
    "duplicate_key": "the same key twice in one YAML mapping",
    "merge_key": "a YAML merge key (`<<`), which the loader refuses (it hides where values come from)",
    "alias_cycle": "a YAML alias that refers to itself",
    "alias_limit": "more YAML aliases than the loader expands (a billion-laughs guard)",
    "non_string_key": "a YAML key that is not a string",
    "unsupported_tag": "a YAML tag other than the plain ones",
    "too_deep": "nesting deeper than the loader accepts",
    "not_a_mapping": "a policy file whose top level is not a mapping",
    "not_found": "no such file or directory",
    "no_policy_files": "a directory without `*.yaml` policy files",
    "no_rules_dir": "the rules directory does not exist",
    "malformed_json": "a JSON input (ticket, payload, request) that does not parse",
    "missing_argument": "a command-line option the command needs was not given",
    "invalid_count": "a count option below 1",
    "empty_window": "a time window whose end is not after its start",
    "empty_corpus": "a ticket corpus with no tickets in it",
    "no_match": "a glob (e.g. `--tickets 'data/*.parquet'`) that matches no file",
    "no_ticket_column": "a Parquet ticket file without the `ticket` column (JSON text of one ticket per row)",
    "output_exists": "an output directory that exists and is not empty (choose a new one)",
    "unwritable": "the output file cannot be written",
}

# -- the policy bundle past its schema (engine.policy.checks, engine.pipeline)
POLICY = {
    "duplicate_id": "two items (rules, scenarios, reasons, ...) share an id",
    "duplicate_version": "two policy files declare the same version",
    "duplicate_platform_code": "two entries map to the same WeChat platform code",
    "version_order": "versions' effective times are not strictly increasing",
    "version_mismatch": "the file name and its declared version differ",
    "unknown_reference": "a reference to an id that is not defined (scenario, reason, rule...)",
    "unknown_fact": "a rule condition names a fact the engine does not provide",
    "unknown_param": "a rule refers to a policy parameter that does not exist",
    "unknown_placeholder": "a message template uses a placeholder the engine does not fill",
    "bad_template": "a message template that does not format",
    "fact_type_mismatch": "a condition compares a fact with a value of another type",
    "fact_stage_mismatch": "a condition uses a fact that does not exist at the rule's stage",
    "impossible_number": "a number that cannot occur (e.g. a negative count or hours beyond a year)",
    "action_actor_mismatch": "a rule is about an action the actor cannot take",
    "action_stage_mismatch": "a rule is about an action at a stage where it cannot happen",
    "effect_stage_mismatch": "an effect that has no meaning at the rule's stage",
    "feature_disabled": "a rule depends on a feature the version turns off",
    "feature_without_settings": "a feature is enabled without the settings it needs",
    "refund_type_unreachable": "a refund type no scenario can lead to",
    "refund_type_misplaced": "a refund type used where the platform does not allow it",
    "wrong_negotiation_type": "a negotiation type used where another is required",
    "outcome_mismatch": "the outcome of a negotiation contradicts its status",
    "unmarked_no_limit": "an unlimited value that does not say so explicitly",
    "undeclared_change": "a version changes behaviour without declaring the change",
    "declared_change_unmatched": "a declared change that matches no computed change",
    "touches_unused": "a declared change names a path that nothing changed (warning)",
    "compile_error": "a rule the compiler cannot translate for the durable_rules engine",
    "engine_disagreement": "durable_rules and the plain evaluator disagree on a fact set",
    "outcome_missing": "a situation for which no rule decides an action",
    "outcome_ambiguous": "a situation for which two rules decide an action differently",
    "check_crashed": "a check failed with an exception (a bug: report it)",
    "handover_failed": "a reload: a worker could not build the validated bundle; every worker keeps the one in force",
}

# -- policy test-case files (engine.policytests.files)
CASES = {
    "missing_at": "a case without `at` (and no `defaults.at`)",
    "missing_actor": "a decision case without `actor` (and no `defaults.actor`)",
    "actor_not_allowed": "a check or apply case that gives an `actor`",
    "duplicate_case_name": "two cases with the same name",
}

# -- a ticket past its schema (engine.decisions.ticket): tickets the platform cannot show
TICKET = {
    "amount_above_paid": "the requested refund exceeds the paid amount",
    "quantity_above_ordered": "the requested quantity exceeds the ordered quantity",
    "status_type_mismatch": "a status that exists only for another after-sale type",
    "pending_without_status": "a pending proposal while the status is not awaiting the buyer",
    "count_mismatch": "the negotiation count contradicts the pending proposal",
    "unknown_scenario": "a scenario the policy version in force does not define",
    "unknown_category": "a product category the policy version in force does not define",
    "unknown_negotiation_type": "a negotiation type the policy version does not define",
    "unknown_reason": "a negotiation reason the policy version does not define",
    "last_outcome_missing": "negotiations were used, none is pending, and how the last one ended is not said",
}

# -- WeChat platform objects (engine.wechat)
PLATFORM = {
    "platform_error": "the platform answered with an errcode instead of an order",
    "unknown_status": "a platform status the adapter does not know",
    "status_not_negotiable": "the order is in a status where no negotiation is possible",
    "out_of_scope": "an order type the product does not handle",
    "contradicts_status": "context that contradicts the order's status",
    "contradicts_type": "detail that contradicts the order's after-sale type",
    "deadline_without_anchor": "a deadline with no time to count it from",
    "unknown_reason_code": "a platform reason code no policy reason maps to",
    "ambiguous_reason_code": "a platform reason code that maps to several policy reasons",
    "wrong_ticket": "a proposal for another after-sale order than the one given",
    "epoch_milliseconds": "a platform time in epoch milliseconds where the platform sends epoch seconds",
    "ambiguous_endpoint": "a request body with keys of more than one platform call; say which with `endpoint`",
}

PROBLEM_CODES: dict[str, str] = {**SHAPE, **FILES, **POLICY, **CASES, **TICKET, **PLATFORM}

# The `code` of an HTTP error answer (schemas/requests/error.schema.json); its `problems` carry
# PROBLEM_CODES.
HTTP_ERROR_CODES: dict[str, str] = {
    "malformed_json": "the body is not JSON",
    "invalid_request": "the body does not match the endpoint's request schema",
    "invalid_ticket": "the ticket is invalid (problems under /ticket)",
    "invalid_payload": "the action payload is invalid (problems under /payload)",
    "invalid_input": "other caller input is invalid",
    "invalid_platform_payload": "a WeChat platform object is invalid",
    "unknown_version": "no policy version of that name",
    "no_version": "no policy version is in force at `at`",
    "unknown_action": "an unknown actor, action or answer",
    "not_found": "no such route",
    "method_not_allowed": "the route does not take this method",
    "body_too_large": "the body exceeds the size limit",
    "bad_request": "the request cannot be read",
    "unauthorized": "an admin endpoint called without the admin token",
    "http_error": "any other HTTP-level refusal (the status says which)",
    "not_implemented": "the endpoint exists but is not available here",
    "reload_failed": "the rules directory did not load; the previous generation keeps serving",
    "undeclared_removal": ("a reload would drop a version that is or was in force without declaring it "
                           "(POST /admin/reload {\"remove\": [...]}); nothing changes (409)"),
    "decision_log_unavailable": "required mode: the decision could not be written to the decision log, so it was "
                                "not answered (503)",
    "overloaded": "every connection of the worker is busy: retry after `Retry-After` seconds (503)",
    "request_timeout": "the request (head and body) did not arrive within the request timeout (408)",
    "internal_error": "a bug: the server log names the incident",
}

GROUPS: dict[str, dict[str, str]] = {
    "Shape of any input": SHAPE, "Files and command-line input": FILES, "Policy bundle": POLICY,
    "Policy test-case files": CASES, "Tickets": TICKET, "WeChat platform objects": PLATFORM,
}


def markdown() -> str:
    """docs/problems.md: this module as a table per group (tests keep the file equal to it)."""
    lines = ["# Problem codes", "",
             "<!-- generated from engine/core/codes.py: edit there, then run",
             "     `python -c 'from engine.core.codes import markdown; print(markdown(), end=\"\")' > docs/problems.md` -->",
             "",
             "Everything a caller or the policy team can get wrong is reported as a *problem*:",
             "`{path, code, message}` (plus `hint` when the engine can tell how to fix it); in a file, also",
             "`file`, `line`, `column` and `severity`. `path` is a JSON pointer into the input. The codes",
             "are stable; the messages may improve.", ""]
    for title, group in GROUPS.items():
        lines += [f"## {title}", "", "| code | meaning |", "|---|---|"]
        lines += [f"| `{code}` | {meaning} |" for code, meaning in group.items()]
        lines.append("")
    lines += ["## HTTP error answers", "",
              "The `code` of an HTTP error body (`schemas/requests/error.schema.json`); its `problems`",
              "carry the codes above.", "", "| code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {meaning} |" for code, meaning in HTTP_ERROR_CODES.items()]
    return "\n".join(lines) + "\n"
