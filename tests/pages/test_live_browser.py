"""The project page in a real browser: a run's progress, curves and error appear without a reload
of the admin's own, and untrusted text written by the script stays text.

Drives Debian's Chromium through Playwright against pytest-django's live server; the test plays
the worker by writing the run's progress into the database. Skipped when /usr/bin/chromium is
missing, unless PROSPECT_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""
import pytest

from trainer.models import TrainingRun

PASSWORD = "pw-Secret-123"  # tests/conftest.py's make_user default
HOSTILE = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def step_metrics(count):
    return [{"step": s, "elapsed": s * 0.5, "loss": 0.69 - 0.02 * s, "kl": 0.01 * s, "rewards/chosen": 0.1 * s,
             "rewards/rejected": -0.1 * s, "rewards/margins": 0.2 * s} for s in range(1, count + 1)]


def test_a_running_run_updates_live_and_its_error_stays_text(page, live_server, project, admin_user):
    run = TrainingRun.objects.create(project=project, status="running", phase="reference", total_steps=10)
    page.goto(f"{live_server.url}/login/?next=/projects/{project.pk}/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    card = page.locator(f'[data-run="{run.pk}"]')
    assert card.locator('[data-field="step"]').inner_text() == "0"
    assert card.locator('[data-chart="loss"] [data-empty]').is_visible()

    TrainingRun.objects.filter(pk=run.pk).update(step=4, phase="training", metrics=step_metrics(4))
    page.wait_for_function(
        "id => document.querySelector(`[data-run='${id}'] [data-field='step']`).textContent === '4'", arg=run.pk)
    assert card.locator('[data-field="phase"]').inner_text() == "training"
    assert card.locator('[data-field="eta"]').inner_text() == "3 s"  # 6 steps left at 0.5 s a step
    assert len(card.locator('[data-chart="loss"] polyline').get_attribute("points").split()) == 4
    assert not card.locator('[data-chart="loss"] [data-empty]').is_visible()
    assert card.locator('[data-chart="rewards"] [data-last="2"]').inner_text() == "0.8"

    # The run fails: the page reloads by itself and shows the error as text.
    TrainingRun.objects.filter(pk=run.pk).update(status="failed", phase="", error=HOSTILE)
    page.wait_for_function(
        "id => { const el = document.querySelector(`[data-run='${id}']`); return el && el.dataset.live === 'false'; }",
        arg=run.pk)
    page.wait_for_load_state()
    assert card.locator('[data-field="status"]').inner_text() == "failed"
    assert card.locator('[data-field="error"]').inner_text() == HOSTILE
    assert card.locator(".run-cancel").count() == 0
    assert page.evaluate("window.__pwned") is None
