"""`update_reason_type` (the platform's 协商说明 code) <-> the policy's reason ids.

The mapping lives in the policy (`reasons[].platform_code`), not here: which reasons exist, and
which published code each carries, changes with the policy version. A code the version does not
know is a caller error naming the codes it does know.
"""
from __future__ import annotations

from typing import Any

from engine.wechat.reader import Problems


def known_codes(policy: Any) -> dict[int, str]:
    """platform code -> reason id, for every reason of `policy` that carries a published code."""
    return {r.platform_code: r.id for r in policy.reasons.values() if r.platform_code is not None}


def reason_id_for_code(policy: Any, code: int, *, negotiation_type: str | None, ticket_type: str | None,
                       where: str, problems: Problems) -> str | None:
    """The reason id `code` stands for in `policy`, or None after recording a problem at `where`.

    Published codes are unique per reason in the platform's table; should a policy give one code
    to several reasons (e.g. one per ticket type), the negotiation type and the ticket type pick
    the one meant, and anything still ambiguous is refused rather than guessed."""
    candidates = [r for r in policy.reasons.values() if r.platform_code == code]
    if not candidates:
        listing = ", ".join(f"{c} ({rid})" for c, rid in sorted(known_codes(policy).items()))
        problems.add(where, "unknown_reason_code",
                     f"update_reason_type {code} is not a reason in policy {policy.version} (known: {listing})")
        return None
    if len(candidates) > 1:
        narrowed = [r for r in candidates if negotiation_type in (None, r.negotiation_type)]
        narrowed = [r for r in narrowed if ticket_type in (None, *r.ticket_types)] or narrowed
        if len(narrowed) != 1:
            problems.add(where, "ambiguous_reason_code",
                         f"update_reason_type {code} names several reasons in policy {policy.version} "
                         f"({', '.join(r.id for r in candidates)}) and the request does not tell them apart")
            return None
        candidates = narrowed
    return str(candidates[0].id)
