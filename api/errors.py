"""Every error the API answers, as an RFC 9457 problem document, in one place.

- ``DomainError`` (and its subclasses): its ``status``, ``title``, ``type``
  and ``detail``, plus its ``extra`` facts as extension members (the
  current ``heads`` of a stale edit, say);
- request validation: malformed JSON is ``400``, anything else (unknown
  field, wrong type, bad UUID, ...) ``422`` with an ``errors`` list;
- Starlette's HTTP errors (unknown path ``404``, wrong method ``405``, ...);
- anything unexpected: ``500`` with a generic detail (the traceback goes to
  the log, not to the client).

Problem ``type``s are URNs ``urn:fedsync:problem:<slug>`` (docs/api.md lists them).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.schemas.common import Problem
from domain.errors import DomainError

MEDIA_TYPE = "application/problem+json"
UNPARSED_BODY = "There was an error parsing the body"  # FastAPI's 400 for a JSON body it could not decode at all
TYPE_PREFIX = "urn:fedsync:problem:"
log = logging.getLogger("fedsync.api")


class PreconditionRequired(DomainError):
    """A change that does not say which head it is based on."""

    status = 428
    type = "precondition-required"
    title = "Precondition required"


class InvalidCursor(DomainError):
    status = 400
    type = "invalid-cursor"
    title = "Invalid cursor"


def problem_body(status: int, title: str, detail: str, slug: str, instance: str | None = None,
                 **extra: Any) -> bytes:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return orjson.dumps(body)


def problem(request: Request | None, status: int, title: str, detail: str, slug: str,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    instance = request.url.path if request is not None else None
    return Response(problem_body(status, title, detail, slug, instance, **extra), status_code=status,
                    media_type=MEDIA_TYPE, headers=headers)


def _slug(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-")
    except ValueError:
        return "error"


async def domain_error(request: Request, error: DomainError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="fedsync"'} if error.status == 401 else None
    extra = {k: v for k, v in error.extra.items() if k not in {"type", "title", "status", "detail", "instance"}}
    if "retry_after" in extra:
        headers = {**(headers or {}), "Retry-After": str(extra["retry_after"])}
    return problem(request, error.status, error.title, error.detail, error.type, headers, **extra)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        reason = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return problem(request, 400, "Malformed JSON", f"the request body is not valid JSON: {reason}".rstrip(": "),
                       "malformed-json")
    listed = [{"loc": _location(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in errors[:20]]
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in listed[:5])
    return problem(request, 422, "Invalid request", detail, "invalid-request", errors=listed)


async def http_error(request: Request, error: StarletteHTTPException) -> Response:
    if error.status_code == 400 and error.detail == UNPARSED_BODY:
        return problem(request, 400, "Malformed JSON", "the request body is not valid JSON: not UTF-8, or nested "
                       "too deeply to read", "malformed-json")
    phrase = HTTPStatus(error.status_code).phrase if error.status_code in HTTPStatus._value2member_map_ else "Error"
    detail = error.detail if isinstance(error.detail, str) else phrase
    if error.status_code == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.method} {request.url.path}"
    if error.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(request, error.status_code, phrase, detail, _slug(error.status_code),
                   dict(error.headers) if error.headers else None)


async def unexpected_error(request: Request, error: Exception) -> Response:
    # Starlette re-raises after this answer, so the failure is still logged and seen.
    log.error("unexpected error on %s %s: %r", request.method, request.url.path, error)
    return problem(request, 500, "Internal server error", "the node failed to answer this request", "internal-error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)


EDITOR_PROBLEMS = {
    400: "malformed JSON or request",
    401: "missing, forged or expired editor token",
    403: "the token's role may not do this",
    404: "no such item (or not visible to this editor)",
    409: "stale head (the body lists the current heads) or a conflicting change",
    413: "request body too large",
    422: "invalid request: unknown field, wrong type, invalid UUID or reference",
    428: "the change does not name the head it is based on",
}
FEDERATION_PROBLEMS = {
    400: "malformed JSON",
    401: "missing or invalid node token",
    403: "every transaction refused: a type the peering does not accept, a share only the item's creator may make",
    404: "no such peer, or no keys known for that origin",
    409: "every transaction refused: equivocation or a conflicting entity",
    410: "unknown 'after': a gid never stored or that the caller may not see, or a cursor not given to it",
    413: "batch too large",
    422: "invalid request",
    429: "busy: retry after the Retry-After header",
}


def responses(*statuses: int, described: dict[int, str] = EDITOR_PROBLEMS) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route: each status a problem document."""
    return {status: {"model": Problem, "description": described.get(status, HTTPStatus(status).phrase)}
            for status in statuses}


def federation_responses() -> dict[int | str, dict[str, Any]]:
    """Every problem a federation endpoint may answer (the protocol documents them together)."""
    return responses(*FEDERATION_PROBLEMS, described=FEDERATION_PROBLEMS)
