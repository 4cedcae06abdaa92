"""Prompts, completions, reasons and error messages are untrusted: the page shows them as text."""
from django.urls import reverse

from feedback.models import Generation, Label, Prompt, Round
from trainer.models import TrainingRun

ATTACK = '<script>alert("{}")</script>'


def test_untrusted_text_on_the_project_page_is_escaped(client_as, admin_user, annotator, project):
    project.name = ATTACK.format("name")
    project.save()
    round_ = Round.objects.create(project=project, number=1, status="failed", error=ATTACK.format("round-error"))
    prompt = Prompt.objects.create(project=project, text=ATTACK.format("prompt"))
    generation = Generation.objects.create(prompt=prompt, round=round_, text=ATTACK.format("completion"))
    Label.objects.create(generation=generation, annotator=annotator, desirable=False, reason=ATTACK.format("reason"))
    TrainingRun.objects.create(project=project, status="failed", error=ATTACK.format("run-error"))

    html = client_as(admin_user).get(reverse("project-page", args=[project.pk])).content.decode()

    for what in ("name", "round-error", "prompt", "completion", "reason", "run-error"):
        assert ATTACK.format(what) not in html, what
        assert f"&lt;script&gt;alert(&quot;{what}&quot;)&lt;/script&gt;" in html, what


def test_a_refused_import_names_the_line_and_shows_the_file_name_as_text(client_as, admin_user, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_as(admin_user)
    url = reverse("project-import", args=[project.pk])
    bad_row = SimpleUploadedFile("items.jsonl", b'{"prompt": "ok"}\n{"prompt": 42}\n')
    response = client.post(url, {"file": bad_row})
    assert response.status_code == 400
    assert "line 2" in response.content.decode()
    assert not project.prompts.exists()  # all or nothing

    name = "<img src=x onerror=alert(1)>"
    response = client.post(url, {"file": SimpleUploadedFile(name, b"{}")})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Unsupported file type" in html
    assert name not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_playground_echoes_the_prompt_as_text(client_as, admin_user, project):
    prompt = '</textarea><script>alert("prompt")</script>'
    # An invalid option: the page comes back with the error and the prompt, without generating.
    response = client_as(admin_user).post(
        reverse("project-playground", args=[project.pk]), {"prompt": prompt, "temperature": "hot"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "temperature: must be a number" in html
    assert prompt not in html
    assert "&lt;/textarea&gt;&lt;script&gt;" in html
