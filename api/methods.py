"""Which methods a path answers: the ``Allow`` header of a 405, and the answer to ``OPTIONS``.

The router stops at the first route whose path matches and reports only that route's methods (so
``OPTIONS /channels`` said ``Allow: POST`` though GET works too). Here every method is tried
against the whole router instead.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Scope

#: the methods a route may have; OPTIONS is answered for every path that has one of them
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route answers at this request's path, OPTIONS included; [] when none does."""
    allowed = [method for method in METHODS if _has_route(app, scope, method)]
    return [*allowed, "OPTIONS"] if allowed else []


def _has_route(app: FastAPI, scope: Scope, method: str) -> bool:
    probe = {"type": "http", "method": method, "path": scope["path"], "root_path": scope.get("root_path", ""),
             "headers": scope.get("headers", [])}
    return any(route.matches(probe)[0] == Match.FULL for route in app.router.routes)
