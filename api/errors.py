"""Every error leaves the API as ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.methods import allowed_methods
from services.errors import AuthenticationError, HeraldError
from services.logs import log_event, logger

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
               413: "payload_too_large"}
_LOCATIONS = ("body", "query", "path", "header", "cookie")
_UNPARSABLE = "There was an error parsing the body"  # fastapi.routing's detail for a body it cannot decode
_NOT_AN_OBJECT = ("missing", "model_type", "model_attributes_type", "dict_type")


def error_body(code: str, message: str, field: str | None = None, **extra: object) -> dict:
    body: dict = {"code": code, "message": message}
    if field:
        body["field"] = field
    body.update(extra)
    return {"error": body}


def _field_of(loc: tuple) -> str | None:
    """The dotted field path; ``body`` when the body as a whole is wrong (missing, not an object)."""
    where, parts = (loc[0], loc[1:]) if loc and loc[0] in _LOCATIONS else (None, loc)
    return ".".join(str(p) for p in parts) or ("body" if where == "body" else None)


def _problem(error: dict) -> dict:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":  # loc is ("body", <character offset>)
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return {"field": "body", "message": f"invalid JSON ({reason}{at})"}
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":  # a typo must not pass silently as a field left out
        message = "unknown field: this body does not take it"
    if loc == ("body",) and error.get("type") in _NOT_AN_OBJECT:  # no body, or an array, a string, ...
        message = "a JSON object is required" if error.get("type") == "missing" else "must be a JSON object"
    return {"field": _field_of(loc), "message": message}


def _unreadable(cause: BaseException | None) -> str:
    """Why FastAPI could not read a JSON body (it answers a 400 whatever the cause)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not UTF-8 (byte 0x{cause.object[cause.start]:02x} at position {cause.start})"
    if isinstance(cause, RecursionError):
        return "the JSON is nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):  # int() refuses longer ones (CVE-2020-10735)
        return f"a number in the JSON has more than {sys.get_int_max_str_digits()} digits"
    return "the request body could not be read as JSON"


def _method_not_allowed(request: Request) -> Response:
    """405 with every method the path has in Allow; OPTIONS answers 204 with the same Allow."""
    allowed = allowed_methods(request.app, request.scope)
    headers = {"Allow": ", ".join(allowed)}
    if request.method == "OPTIONS" and allowed:
        return Response(status_code=204, headers=headers)
    message = f"{request.method} is not allowed here; this path takes {', '.join(allowed)}"
    return JSONResponse(error_body("method_not_allowed", message), status_code=405, headers=headers)


def _cors_headers(request: Request) -> dict[str, str]:
    """The CORS headers CORSMiddleware would add: a 500 is sent outside it, and a browser must still read it."""
    origin = request.headers.get("origin")
    allowed = getattr(request.app.state, "settings", None)
    allowed = allowed.cors_origins if allowed is not None else []
    if not origin or (origin not in allowed and "*" not in allowed):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeraldError)
    async def _herald(request: Request, exc: HeraldError) -> JSONResponse:
        if exc.status_code >= 500:
            log_event("api.error", path=request.url.path, code=exc.code)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_problem(e) for e in exc.errors()]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        field = first["field"]
        message = f"{field}: {first['message']}" if field else str(first["message"])
        return JSONResponse(error_body("invalid", message, field, errors=errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        if exc.status_code == 400 and exc.detail == _UNPARSABLE:  # FastAPI's answer to e.g. JSON nested too deeply
            return JSONResponse(error_body("invalid", f"body: {_unreadable(exc.__cause__)}", "body"), status_code=400)
        if exc.status_code == 405:
            return _method_not_allowed(request)
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    # Starlette hands an ``Exception`` handler to ServerErrorMiddleware (the outermost layer): anything
    # unexpected answers JSON there instead of text/plain, and is re-raised for the server to see.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Method, path and traceback only (no body, headers or token); the answer carries no exception text.
        logger.error("event=api.unhandled method=%s path=%s error=%s", request.method, request.url.path,
                     type(exc).__name__, exc_info=exc, extra={"event": "api.unhandled"})
        return JSONResponse(error_body("internal_error", "Herald hit an unexpected error; it has been logged. "
                                       "Try again, and report it if it persists."),
                            status_code=500, headers=_cors_headers(request))
