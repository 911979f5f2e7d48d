"""The OpenAPI document says what the server answers: errors as ErrorBody, 400s, methods and Allow."""

from __future__ import annotations

import re
import uuid

import pytest

from api.factory import create_app
from api.schemas.errors import ErrorBody
from tests.api.conftest import make_settings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DASHBOARD = "https://dash.example.com"


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(make_settings()).openapi()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def error_answer(spec: dict, operation: dict, status: str) -> dict:
    return operation["responses"][status]["content"]["application/json"]["schema"]


class TestErrorsAreDocumentedAsTheyAre:
    def test_fastapis_detail_body_is_gone(self, spec):
        schemas = spec["components"]["schemas"]
        assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
        assert schemas["ErrorBody"]["required"] == ["error"]
        assert set(schemas["ErrorDetail"]["required"]) == {"code", "message"}

    def test_every_operation_documents_422_and_500_as_error_bodies(self, spec):
        for name, operation in operations(spec):
            for status in ("422", "500"):
                assert error_answer(spec, operation, status) == {"$ref": "#/components/schemas/ErrorBody"}, name

    def test_operations_with_a_body_document_400_and_413(self, spec):
        with_body = [(name, op) for name, op in operations(spec) if "requestBody" in op]
        assert {"POST /api/v1/posts", "PUT /api/v1/posts/{post_id}", "PATCH /api/v1/channels/{channel_id}",
                "POST /api/v1/posts/{post_id}/approve", "POST /api/v1/posts/{post_id}/reject",
                "POST /api/v1/webhooks",
                "POST /api/v1/workspaces/{workspace_id}/invites", "POST /api/v1/invites/accept"} <= {name for name, _ in with_body}
        for name, operation in with_body:
            for status in ("400", "413"):
                assert error_answer(spec, operation, status) == {"$ref": "#/components/schemas/ErrorBody"}, name

    def test_every_4xx_is_an_error_body(self, spec):
        for name, operation in operations(spec):
            for status in operation["responses"]:
                if status.startswith("4"):
                    assert error_answer(spec, operation, status)["$ref"].endswith("/ErrorBody"), (name, status)

    async def test_the_answers_match_the_documented_body(self, client, alice):
        answers = [
            await client.post("/api/v1/posts", json={"content": {}}, headers=alice.headers),  # 422
            await client.post("/api/v1/posts", content=b"\xff", headers={**alice.headers,
                                                                        "Content-Type": "application/json"}),  # 400
            await client.get("/api/v1/posts"),  # 401
            await client.get(f"/api/v1/posts/{uuid.uuid4()}", headers=alice.headers),  # 404
            await client.put("/api/v1/posts/statistics", headers=alice.headers),  # 405
        ]
        assert [a.status_code for a in answers] == [422, 400, 401, 404, 405]
        for answer in answers:
            ErrorBody.model_validate(answer.json())

    def test_authentication_is_a_security_scheme_not_a_header_parameter(self, spec):
        schemes = spec["components"]["securitySchemes"]
        assert schemes["SupabaseJWT"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                          "description": schemes["SupabaseJWT"]["description"]}
        assert schemes["CronSecret"]["in"] == "header" and schemes["CronSecret"]["name"] == "X-Cron-Secret"
        posts = spec["paths"]["/api/v1/posts"]["get"]
        assert posts["security"] == [{"SupabaseJWT": []}]
        assert not [p for p in posts.get("parameters", []) if p["name"].lower() == "authorization"]
        cron = spec["paths"]["/api/v1/cron/publish-scheduled"]["post"]
        assert cron["security"] == [{"CronSecret": []}, {"CronBearer": []}]  # either one


class TestUnreadableBodies:
    @pytest.mark.parametrize(("content", "says"), [
        (b'{"content": {"text": "' + b"1" * 10 + b'"}, "n": ' + b"7" * 5000 + b"}", "more than 4300 digits"),
        (b'{"content": {"text": "\xff"}}', "not UTF-8 (byte 0xff at position 22)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ])
    async def test_a_400_says_why(self, client, alice, content, says):
        headers = {**alice.headers, "Content-Type": "application/json"}
        response = await client.post("/api/v1/posts", content=content, headers=headers)
        assert response.status_code == 400, response.text[:300]
        error = response.json()["error"]
        assert error["field"] == "body" and says in error["message"], error


class TestMethods:
    async def test_put_on_statistics_is_a_405_not_a_bad_uuid(self, client, alice):
        response = await client.put("/api/v1/posts/statistics", json={}, headers=alice.headers)
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "GET, OPTIONS"
        assert response.json()["error"]["code"] == "method_not_allowed"

    @pytest.mark.parametrize(("path", "allow"), [
        ("/api/v1/channels", "GET, POST, OPTIONS"),
        (f"/api/v1/posts/{uuid.uuid4()}", "GET, PUT, PATCH, DELETE, OPTIONS"),
        ("/api/v1/cron/publish-scheduled", "GET, POST, OPTIONS"),
        ("/api/v1/health", "GET, HEAD, OPTIONS"),
    ])
    async def test_allow_lists_every_method_of_the_path(self, client, path, allow):
        refused = await client.request("TRACE", path)
        assert refused.status_code == 405 and refused.headers["allow"] == allow
        options = await client.options(path)
        assert options.status_code == 204 and options.headers["allow"] == allow and options.content == b""

    async def test_options_on_no_path_is_a_404(self, client):
        assert (await client.options("/api/v1/nothing-here")).status_code == 404

    async def test_a_cors_preflight_is_still_answered_by_cors(self, client):
        response = await client.options(f"/api/v1/posts/{uuid.uuid4()}", headers={
            "Origin": DASHBOARD, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == DASHBOARD
        assert "PUT" in response.headers["access-control-allow-methods"]

    def test_put_is_documented_with_the_create_body_and_its_status_alias(self, spec):
        put = spec["paths"]["/api/v1/posts/{post_id}"]["put"]
        assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PostReplace"}
        schemas = spec["components"]["schemas"]
        # the create body plus the documented `status` alias; no other field is taken
        documented = set(schemas["PostReplace"]["properties"])
        assert documented - {"status"} - set(schemas["PostCreate"]["properties"]) == set(schemas["PostOut"]["properties"]) - {
            "status", *schemas["PostCreate"]["properties"]}  # GET's read-only fields: accepted and ignored
        assert "status" in documented
        assert schemas["PostReplace"]["additionalProperties"] is False
        assert spec["paths"]["/api/v1/posts/{post_id}"]["get"]["parameters"][0]["schema"]["format"] == "uuid"


class TestTheDocumentStatesTheRules:
    """What the models check, the document says; what it says, the models check (Schemathesis found these)."""

    def test_content_needs_text_or_media(self, spec):
        assert spec["components"]["schemas"]["ContentIn"]["anyOf"] == [
            {"required": ["text"], "properties": {"text": {"pattern": r"\S"}}},
            {"required": ["media"], "properties": {"media": {"minItems": 1}}},
        ]

    def test_patch_fields_that_cannot_be_null_are_not_nullable(self, spec):
        fields = spec["components"]["schemas"]["PostPatch"]["properties"]
        assert fields["content"] == {"$ref": "#/components/schemas/ContentIn"}
        assert fields["timezone"]["type"] == "string" and "anyOf" not in fields["timezone"]
        assert fields["channel_ids"]["type"] == "array" and fields["channel_ids"]["maxItems"] == 50
        assert {"type": "null"} in fields["scheduled_at"]["anyOf"]  # null turns a post into a draft

    def test_no_query_parameter_or_header_is_nullable(self, spec):
        for name, operation in operations(spec):
            for parameter in operation.get("parameters", []):
                assert "anyOf" not in parameter["schema"] and parameter["schema"].get("default", "") is not None, (
                    name, parameter)

    @pytest.mark.parametrize(("at", "ok"), [
        ("2028-02-29T09:00", True),  # a leap day
        ("2030-02-29T09:00", False),
        ("2100-02-29T09:00:00Z", False),  # not a leap year
        ("2030-01-31T09:00:00.123456+14:00", True),
        ("2030-01-31 09:00:00Z", False),  # pydantic would take these three
        ("2030-01-31", False),
        ("1900000000", False),
    ])
    async def test_an_instant_is_taken_as_the_pattern_says(self, client, alice, spec, at, ok):
        pattern = spec["components"]["schemas"]["PostCreate"]["properties"]["scheduled_at"]["anyOf"][0]["pattern"]
        assert bool(re.match(pattern, at)) is ok
        draft = (await client.post("/api/v1/posts", json={"content": {"text": "hi"}}, headers=alice.headers)).json()
        response = await client.patch(f"/api/v1/posts/{draft['id']}", json={"scheduled_at": at}, headers=alice.headers)
        assert response.status_code == (200 if ok else 422), response.text
        if not ok:
            assert response.json()["error"]["field"] == "scheduled_at"

    async def test_the_status_filter_takes_statuses_only(self, client, alice):
        assert (await client.get("/api/v1/posts?status=draft,failed", headers=alice.headers)).status_code == 200
        assert (await client.get("/api/v1/posts?status=", headers=alice.headers)).status_code == 200
        refused = await client.get("/api/v1/posts?status=draft,nope", headers=alice.headers)
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "status"

    async def test_a_text_over_100000_characters_is_refused(self, client, alice, spec):
        # the one limit too long for Schemathesis to exceed (see test_schemathesis.LONGEST_GENERATED)
        assert spec["components"]["schemas"]["ContentIn"]["properties"]["text"]["maxLength"] == 100_000
        for text, status in (("x" * 100_000, 201), ("x" * 100_001, 422)):
            response = await client.post("/api/v1/posts", json={"content": {"text": text}}, headers=alice.headers)
            assert response.status_code == status, response.text[:300]
