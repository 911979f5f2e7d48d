"""The one error body every failure answers with, and the OpenAPI ``responses`` entries that name it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    field: str | None = Field(description="dotted path of the field at fault (`body` for the body as a whole)")
    message: str


class ErrorDetail(BaseModel):
    # some errors carry more, e.g. `items` (index, field, code, message) for a bulk create
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="stable and machine-readable: invalid, unauthorized, not_found, invalid_state, ...")
    message: str = Field(description="for people: what is wrong and what to do about it")
    field: str | None = Field(None, description="the field (or header, or query parameter) at fault, when there is one")
    errors: list[Problem] | None = Field(None, description="every problem found in the request, for a 422")


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict]:
    """``responses=`` for a route: each status answers an ErrorBody."""
    return {status: {"model": ErrorBody, "description": text} for status, text in descriptions.items()}
