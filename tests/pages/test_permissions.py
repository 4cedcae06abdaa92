"""Who may see the admin pages and use their forms: project admins and superusers only."""
import pytest
from django.urls import reverse

from trainer.models import TrainingRun

PAGES = ["project-page", "project-live", "project-playground"]
ACTIONS = ["project-open-round", "project-start-run", "project-import"]


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, project, name):
    url = reverse(name, args=[project.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_annotators_are_refused(client_as, annotator, project, name):
    assert client_as(annotator).get(reverse(name, args=[project.pk])).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_non_members_do_not_learn_the_project_exists(client_as, outsider, project, name):
    assert client_as(outsider).get(reverse(name, args=[project.pk])).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_project_admins_and_superusers_get_the_pages(client_as, admin_user, superuser, project, name):
    assert client_as(admin_user).get(reverse(name, args=[project.pk])).status_code == 200
    assert client_as(superuser).get(reverse(name, args=[project.pk])).status_code == 200


@pytest.mark.parametrize("name", ACTIONS)
def test_annotators_cannot_use_the_admin_forms(client_as, annotator, project, name):
    response = client_as(annotator).post(reverse(name, args=[project.pk]))
    assert response.status_code == 403
    assert not project.rounds.exists() and not TrainingRun.objects.exists()


def test_annotators_cannot_cancel_runs_or_activate_checkpoints(client_as, annotator, project, make_checkpoint):
    run = TrainingRun.objects.create(project=project)
    checkpoint = make_checkpoint()
    client = client_as(annotator)
    assert client.post(reverse("run-cancel", args=[run.pk])).status_code == 403
    assert client.post(reverse("checkpoint-activate-page", args=[checkpoint.pk])).status_code == 403
    run.refresh_from_db()
    project.refresh_from_db()
    assert run.status == "queued"
    assert project.active_checkpoint is None


def test_actions_refuse_get(client_as, admin_user, project):
    assert client_as(admin_user).get(reverse("project-open-round", args=[project.pk])).status_code == 405


def test_forms_carry_a_csrf_token(client_as, admin_user, project, labelled_round, make_checkpoint):
    make_checkpoint()
    TrainingRun.objects.create(project=project)
    client = client_as(admin_user)
    html = client.get(reverse("project-page", args=[project.pk])).content.decode()
    post_forms = html.count('method="post"')
    assert post_forms >= 6  # logout, open round, start run, cancel, activate, import
    assert html.count('name="csrfmiddlewaretoken"') >= post_forms


def test_forms_are_refused_without_the_csrf_token(admin_user, project):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("project-open-round", args=[project.pk])).status_code == 403
