"""The OpenAPI document describes every editor endpoint with its models and problem responses."""

from __future__ import annotations

from tests.api.conftest import Api

EDITOR_PREFIXES = ("/items", "/tags", "/admin")


def test_every_editor_operation_has_summary_models_and_problem_responses(api: Api) -> None:
    schema = api.get("/openapi.json").json()

    operations = [(path, method, op) for path, ops in schema["paths"].items() if path.startswith(EDITOR_PREFIXES)
                  for method, op in ops.items()]

    assert len(operations) >= 20
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("description") or op.get("summary"), where
        success = [s for s in op["responses"] if s.startswith("2")]
        assert success, where
        if success != ["204"]:
            assert "$ref" in str(op["responses"][success[0]]["content"]["application/json"]["schema"]), where
        bodiless = ("/retry", "/sync", ":grant", ":refuse", "/restore")
        if method in ("post", "patch") and not path.endswith(bodiless):
            body = op["requestBody"]["content"]  # JSON, or a file upload's form
            assert "$ref" in str((body.get("application/json") or body["multipart/form-data"])["schema"]), where
        assert "401" in op["responses"], where
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}, where
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()


def test_docs_page_is_served(api: Api) -> None:
    response = api.get("/docs")

    assert response.status_code == 200 and "swagger" in response.text.lower()


def test_unexpected_errors_are_500_problems(api: Api) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    api.client.app.state.library.items = broken
    response = api.get("/items", headers=api.auth())

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "boom" not in response.text
