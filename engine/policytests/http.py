"""Run the policy test cases against a running decision service (`aftersale serve`) instead of an
in-process `Engine`: `HttpEngine` speaks `/v1/decide`, `/v1/check`, `/v1/apply` and `/v1/versions`
and answers like the library does, so `engine.policytest.run_cases(HttpEngine(url), cases)` runs
one corpus of cases against both.

    from engine.policytests.http import HttpEngine
    with HttpEngine("http://127.0.0.1:8080") as remote:
        remote.decide(ticket, "merchant", at="2024-06-02T10:00:00+08:00")

"Like the library" means:
- a 2xx answer is the library's answer minus the service-only `decision_id`;
- a 4xx answer raises the exception the library raises for the same input (`engine.errors`), with
  the service's message and its problems re-rooted back into the ticket or payload (the service
  says `/ticket/scenario`, the library `/scenario`), so a case that expects `error: TicketError`
  passes over HTTP exactly when it passes in process;
- anything else (5xx, a proxy's HTML page, a route that does not exist) raises `ServiceError`, which
  is deliberately NOT an `EngineError`: the runner reports it as a crash, never as an expected error.

The service checks the request envelope against its JSON schemas before the engine sees it and
answers `invalid_request` for what the engine would have refused itself (an unknown actor, a ticket
missing a field, a naive `at`); `_envelope_error` maps those problems to the engine's exception.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from engine.core import errors
from engine.core.problems import Problem
from engine.core.timeutil import parse_aware

if TYPE_CHECKING:
    from engine.api import Engine, VersionInfo
    from engine.rules.compile import CompiledPolicy

E = TypeVar("E", bound=errors.EngineError)

SERVICE_ONLY_KEYS = ("decision_id",)


class ServiceError(Exception):
    """The service answered something that is not a decision nor an input error the engine would
    raise (5xx, non-JSON, unknown route, body too large...), or did not answer (`status` None,
    code `unreachable`). Not an EngineError on purpose."""

    def __init__(self, status: int | None, code: str, message: str, url: str) -> None:
        self.status, self.code, self.url = status, code, url
        answered = f"HTTP {status} {code}" if status is not None else code
        super().__init__(f"{url}: {answered}: {message}")


class HttpEngine:
    """The `Engine` surface the policy-test runner uses (`decide`, `check`, `apply`, `versions`,
    `compiled`), answered by a decision service at `base_url` over one keep-alive connection.

    `client`: an `httpx.Client` to use (not closed by `close()`); by default one is made here.
    `local`: an in-process `Engine` for `compiled()`; else one is loaded from `rules_dir` (default:
    the bundled rules) on first use. The service does not publish compiled rule indexes, and the
    runner needs only their ids (to validate `covers` / `fired` and to report coverage): they must
    come from the same rules the service loaded (`bundle_hash` tells whether they do).
    """

    def __init__(self, base_url: str, client: httpx.Client | None = None, *, local: Engine | None = None,
                 rules_dir: str | Path | None = None,
                 timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        if client is None:
            client = httpx.Client(timeout=timeout)  # pools connections: keep-alive across cases
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self._local, self._owns_local, self._rules_dir = local, local is None, rules_dir

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._owns_local and self._local is not None:
            self._local.close()
            self._local = None

    def __enter__(self) -> "HttpEngine":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the three questions -------------------------------------------------------------------------
    def decide(self, ticket: dict[str, Any], actor: str, at: datetime | str | None = None,
               version: str | None = None) -> dict[str, Any]:
        return self._ask("decide", {"ticket": ticket, "actor": actor}, at, version)

    def check(self, ticket: dict[str, Any], action: str, payload: dict[str, Any] | None = None,
              at: datetime | str | None = None, version: str | None = None) -> dict[str, Any]:
        body = {"ticket": ticket, "action": action}
        if payload is not None:  # the library reads None as {}; so does the service an absent payload
            body["payload"] = payload
        return self._ask("check", body, at, version)

    def apply(self, ticket: dict[str, Any], answer: str, at: datetime | str | None = None,
              version: str | None = None, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"ticket": ticket, "answer": answer}
        if reason is not None:
            body["reason"] = reason
        return self._ask("apply", body, at, version)

    # -- versions and rules --------------------------------------------------------------------------
    def versions(self) -> list[VersionInfo]:
        """The versions the service serves, as the library's `VersionInfo`s."""
        from engine.api import VersionInfo

        body = self._get("/v1/versions")
        return [VersionInfo(v["version"], parse_aware(v["effective_from"]),
                            parse_aware(v["effective_until"]) if v.get("effective_until") else None)
                for v in body["versions"]]

    @property
    def bundle_hash(self) -> str:
        """The content hash of the bundle the service decides with."""
        return str(self._get("/v1/versions")["bundle_hash"])

    @property
    def local(self) -> Engine:
        """The in-process engine behind `compiled()` (see the class docstring)."""
        if self._local is None:
            from engine.api import Engine
            self._local = Engine.from_directory(self._rules_dir)
        return self._local

    def compiled(self, version: str) -> CompiledPolicy:
        return self.local.compiled(version)

    # -- transport -------------------------------------------------------------------------------------
    def _ask(self, kind: str, body: dict[str, Any], at: datetime | str | None,
             version: str | None) -> dict[str, Any]:
        if at is not None:
            body["at"] = at.isoformat() if isinstance(at, datetime) else at
        if version is not None:
            body["version"] = version
        url = f"{self.base_url}/v1/{kind}"
        response = self._send("POST", url, body)
        answer = _json(response, url)
        if response.status_code == 200 and isinstance(answer, dict) and "error" not in answer:
            return {k: v for k, v in answer.items() if k not in SERVICE_ONLY_KEYS}
        raise _error(response.status_code, answer, url, kind, body.get("version"))

    def _get(self, path: str) -> dict[str, Any]:
        url = self.base_url + path
        response = self._send("GET", url)
        answer = _json(response, url)
        if response.status_code != 200 or not isinstance(answer, dict):
            raise _error(response.status_code, answer, url, "get")
        return answer

    def _send(self, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return self.client.request(method, url, json=body)
        except httpx.TransportError as exc:  # refused, reset, timed out: the service did not answer
            raise ServiceError(None, "unreachable", f"{type(exc).__name__}: {exc}", url) from None


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise ServiceError(response.status_code, "not_json", f"the answer is not JSON ({kind})", url) from None


# -- errors: the service's answer back to the library's exception ----------------------------------------

# Service error code → how the library raised it. TicketError/PayloadError problems come back
# re-rooted in the body (`/ticket/...`, `/payload/...`): the prefix is removed again.
_BY_CODE: dict[str, tuple[type[errors.EngineError], str | None]] = {
    "invalid_ticket": (errors.TicketError, "/ticket"),
    "invalid_payload": (errors.PayloadError, "/payload"),
    "invalid_input": (errors.InputError, ""),
    "unknown_version": (errors.UnknownVersionError, None),
    "no_version": (errors.NoVersionError, None),
    "unknown_action": (errors.UnknownActionError, None),
}


def _error(status: int, answer: Any, url: str, kind: str, version: str | None = None) -> Exception:
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return ServiceError(status, "unexpected_answer", f"not the service's error shape: {str(answer)[:200]}", url)
    code, message = str(error.get("code")), str(error.get("message"))
    problems = [Problem.from_json(p) for p in error.get("problems") or () if isinstance(p, dict)]
    if 400 <= status < 500 and code in _BY_CODE:
        klass, root = _BY_CODE[code]
        if klass is errors.InputError:
            return errors.InputError(_unrooted(problems, root or ""), message)
        if root is not None:  # TicketError, PayloadError: built from their problems, as the library does
            return klass(_unrooted(problems, root))
        exc = _with_message(klass, message)
        if isinstance(exc, errors.UnknownVersionError):
            exc.version = version or ""  # as the library's carries it (the version asked for)
        return exc
    if status == 422 and code == "invalid_request" and kind in _ENGINE_ORDER:
        mapped = _envelope_error(kind, problems, version)
        if mapped is not None:
            return mapped
    if status == 404 and code == "not_found":
        message += " (is the URL the service's base, without /v1?)"
    return ServiceError(status, code, message, url)


def _unrooted(problems: list[Problem], root: str) -> list[Problem]:
    """`/ticket/order/category` → `/order/category`; `/at` (an envelope field) stays `/at`, as the
    library names it too."""
    if not root:
        return problems
    parts = root.strip("/").split("/")
    return [p.relative_to(parts) or p for p in problems]


def _with_message(klass: type[E], message: str) -> E:
    """An instance of the library's exception class carrying the service's message. These classes
    build their message from arguments (version, known list...) the answer gives only as text, so
    the instance is made without their __init__; its type, MRO and text are the library's."""
    exc = klass.__new__(klass)
    errors.EngineError.__init__(exc, message)
    return exc


# The order in which the library checks its inputs (engine/api.py, engine/check.py): the first
# refused one names the exception. The service's envelope schema finds them all at once.
#   decide: actor, at, version, ticket     apply: answer, at, version, ticket
#   check:  at, version, ticket, action, payload
_ENGINE_ORDER = {
    "decide": ("/actor", "/at", "/version", "/ticket"),
    "apply": ("/answer", "/at", "/version", "/ticket"),
    "check": ("/at", "/version", "/ticket", "/action", "/payload"),
}


def _envelope_error(kind: str, problems: list[Problem], version: str | None) -> errors.EngineError | None:
    """The library's exception for the first envelope field (in the library's order) the service's
    schema refused; None when the problem is in the envelope itself (an adapter bug, not input)."""
    for field in _ENGINE_ORDER[kind]:
        mine = [p for p in problems if p.path == field or p.path.startswith(field + "/")]
        if not mine:
            continue
        first = mine[0].message or "refused"
        if field in ("/actor", "/answer", "/action"):
            return _with_message(errors.UnknownActionError, f"{field[1:]}: {first}")
        if field == "/at":
            return errors.TicketError(mine)
        if field == "/version":
            exc = _with_message(errors.UnknownVersionError, f"version: {first}")
            exc.version = version or ""
            return exc
        if field == "/ticket":
            return errors.TicketError(_unrooted(mine, "/ticket"))
        return errors.PayloadError(_unrooted(mine, "/payload"))
    return None
