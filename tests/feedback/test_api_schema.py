"""The OpenAPI schema builds without warnings and documents every feedback endpoint."""
from django.core.management import call_command

FEEDBACK_PATHS = {
    "/api/auth/token/": {"post"},
    "/api/projects/": {"get", "post"},
    "/api/projects/{project_id}/": {"get", "patch"},
    "/api/users/": {"post"},
    "/api/projects/{project_id}/members/": {"get", "post"},
    "/api/projects/{project_id}/import/": {"post"},
    "/api/projects/{project_id}/queue/next/": {"get"},
    "/api/projects/{project_id}/queue/skip/": {"post"},
    "/api/projects/{project_id}/stats/": {"get"},
    "/api/labels/": {"get", "post"},
    "/api/labels/undo/": {"post"},
    "/api/labels/{label_id}/": {"get", "patch", "delete"},
}


def test_schema_validates_without_warnings(db, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_schema_and_docs_are_served(client, annotator):
    client.force_login(annotator)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path, methods in FEEDBACK_PATHS.items():
        assert methods <= set(paths[path]), path
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    # Swagger UI comes from our own static files, so the docs work without internet access.
    assert b"drf_spectacular_sidecar/swagger-ui-dist" in docs.content
    assert b"cdn.jsdelivr" not in docs.content and b"unpkg" not in docs.content
