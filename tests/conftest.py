"""Shared fixtures: users with roles, a project, and API clients logged in as each."""
import os

import pytest

# Keep torch on one thread in tests: the machines are small and runs are reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")


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
