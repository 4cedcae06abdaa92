"""Shared fixtures: users with roles, a project, and API clients logged in as each."""
import os
from pathlib import Path

import pytest

# Keep torch on one thread in tests: the machines are small and runs are reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def shared_tiny_model():
    """The offline demo model, built once where the app itself looks for it (base model "tiny")."""
    from trainer.services.storage import resolve_model

    return Path(resolve_model("tiny"))


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create many users; the production hasher costs most of a second per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(db):
    from feedback.models import Project

    return Project.objects.create(name="Demo", base_model="tiny", guidelines="Be *kind*.")


@pytest.fixture
def make_user(db, django_user_model):
    def make(username, *, project=None, role=None, superuser=False, password="pw-Secret-123"):
        user = django_user_model.objects.create_user(username=username, password=password, is_superuser=superuser,
                                                     is_staff=superuser)
        if project is not None and role is not None:
            project.memberships.create(user=user, role=role)
        return user

    return make


@pytest.fixture
def annotator(make_user, project):
    return make_user("ann", project=project, role="annotator")


@pytest.fixture
def admin_user(make_user, project):
    return make_user("boss", project=project, role="admin")


@pytest.fixture
def superuser(make_user):
    return make_user("root", superuser=True)


@pytest.fixture
def outsider(make_user):
    return make_user("stranger")


@pytest.fixture
def api_client_for():
    from rest_framework.test import APIClient

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def client_as(client):
    """client_as(user) -> Django's test client, logged in as that user."""

    def login(user):
        client.force_login(user)
        return client

    return login


CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as root, headless, with no calls home (this machine's network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def page(monkeypatch):
    """A Playwright page in Debian's Chromium. Skipped when Chromium is missing, except in CI
    (PROSPECT_REQUIRE_BROWSER=1), where that is a failure."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("PROSPECT_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " and PROSPECT_REQUIRE_BROWSER=1")
        pytest.skip(message)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test still uses the ORM here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()
            # The test's queries ran while Playwright's loop was current, on a connection of their
            # own that the database teardown would not close.
            connections.close_all()
