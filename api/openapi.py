"""The OpenAPI document: FastAPI's, plus the error answers any operation can give, all as ErrorBody.

FastAPI documents a 422 as ``{"detail": [...]}`` (HTTPValidationError); Herald answers every error as
``{"error": {...}}`` (``api/errors.py``), so that schema is replaced, and the answers that do not
depend on the route (a body that cannot be read, one too large, a string with NUL in any query
parameter, an unexpected failure) are added to every operation they can come from. And a query
parameter or header cannot be null: an optional one is left out, so its schema loses FastAPI's
``anyOf: [..., {type: null}]`` (clients sent the text "null").
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.limits import MAX_BODY_BYTES
from api.schemas.errors import ErrorBody

REF = "#/components/schemas/ErrorBody"
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")

#: answers any operation can give
EVERYWHERE = {
    422: "invalid input: `error.field` names the first problem and `error.errors` lists them all",
    500: "an unexpected error; it has been logged",
}
#: answers any operation that takes a body can give
WITH_A_BODY = {
    400: "the body could not be read as JSON: not UTF-8, nested too deeply, or a number too long",
    413: f"the body is over {MAX_BODY_BYTES // (1024 * 1024)} MiB",
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) return the document with its error answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())  # FastAPI caches the document it returns in app.openapi_schema
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers in place; FastAPI's HTTPValidationError is gone from the result."""
    for path in schema.get("paths", {}).values():
        for method, operation in path.items():
            if method == "parameters":
                continue
            for parameter in operation.get("parameters", []):
                _not_null(parameter["schema"])
            responses = operation.setdefault("responses", {})
            common = {**EVERYWHERE, **(WITH_A_BODY if "requestBody" in operation else {})}
            for status, description in common.items():
                answer = responses.get(str(status))
                if answer is None or _is_fastapi_422(answer):
                    responses[str(status)] = _error_answer(description)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_422:
        schemas.pop(name, None)
    if "ErrorBody" not in schemas:  # no route named it in its own responses
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}))
        schemas["ErrorBody"] = body
    return schema


def _not_null(schema: dict[str, Any]) -> None:
    kinds = schema.get("anyOf", [])
    if {"type": "null"} in kinds and len(kinds) == 2:
        schema.pop("anyOf")
        schema.update(next(kind for kind in kinds if kind != {"type": "null"}))
        if schema.get("default", "") is None:
            schema.pop("default")


def _error_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF}}}}


def _is_fastapi_422(answer: dict[str, Any]) -> bool:
    ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.endswith("/HTTPValidationError")
