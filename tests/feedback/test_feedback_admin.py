"""The Django admin works for every model, and the label history is read-only."""
import pytest
from django.contrib import admin
from django.urls import reverse

from feedback.models import Assignment, Generation, Label, LabelEvent, Membership, Project, Prompt, Round, Skip
from feedback.services.labels import submit_label
from feedback.services.queue import next_item, skip
from trainer.models import Checkpoint, TrainingRun

MODELS = [Project, Membership, Prompt, Round, Generation, Label, LabelEvent, Skip, Assignment, TrainingRun, Checkpoint]


@pytest.fixture
def admin_client_with_data(client, superuser, project, make_items, annotators):
    alice, bob = annotators(2)
    first, second = make_items(2)
    submit_label(alice, first, True, "<b>bold</b>")
    next_item(bob, project)
    skip(bob, second)
    next_item(bob, project)
    run = TrainingRun.objects.create(project=project, created_by=superuser)
    Checkpoint.objects.create(project=project, run=run, path="/tmp/ckpt")
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("model", MODELS, ids=[model.__name__ for model in MODELS])
def test_every_model_has_a_working_changelist_and_change_page(admin_client_with_data, model):
    assert model in admin.site._registry
    meta = model._meta
    changelist = admin_client_with_data.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert changelist.status_code == 200
    searched = admin_client_with_data.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist") + "?q=a")
    assert searched.status_code == 200
    obj = model.objects.first()
    assert obj is not None, f"fixture made no {model.__name__}"
    change = admin_client_with_data.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    assert change.status_code == 200


def test_label_history_cannot_be_added_changed_or_deleted(admin_client_with_data):
    event = LabelEvent.objects.first()
    assert admin_client_with_data.get(reverse("admin:feedback_labelevent_add")).status_code == 403
    assert admin_client_with_data.get(reverse("admin:feedback_labelevent_delete", args=[event.pk])).status_code == 403
    change = admin_client_with_data.post(reverse("admin:feedback_labelevent_change", args=[event.pk]),
                                         {"action": "deleted"})
    assert change.status_code == 403
    event.refresh_from_db()
    assert event.action == "created"


def test_label_change_page_escapes_reasons(admin_client_with_data):
    label = Label.objects.get()
    page = admin_client_with_data.get(reverse("admin:feedback_label_change", args=[label.pk])).content.decode()
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
