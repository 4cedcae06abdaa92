"""The annotation page in a real browser: log in, label with the keyboard, undo, flip a label.

Drives Debian's Chromium through Playwright against pytest-django's live server. Skipped when
/usr/bin/chromium is missing, unless PROSPECT_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""
import os

import pytest

from feedback.models import Generation, Label, LabelEvent, Prompt, Round

PASSWORD = "pw-Secret-123"
HOSTILE = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def items(project):
    round_ = Round.objects.create(project=project, number=1)
    rows = [
        (HOSTILE, None, HOSTILE),
        ("", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Italy?"}], "Rome."),
        ("Name a yellow fruit.", None, "A banana."),
        ("What is 2 + 3?", None, "5."),
        ("Say hello.", None, "Hello!"),
    ]
    generations = []
    for text, messages, completion in rows:
        prompt = Prompt.objects.create(project=project, text=text, messages=messages)
        generations.append(Generation.objects.create(prompt=prompt, round=round_, text=completion))
    return generations


def shown(page) -> int:
    return int(page.get_attribute("#annotate", "data-shown"))


def wait_for_item_change(page, previous: int) -> int:
    page.wait_for_function(
        "previous => { const v = document.getElementById('annotate').dataset.shown; return v && v !== String(previous); }",
        arg=previous,
    )
    return shown(page)


def wait_until_saved(page) -> None:
    page.wait_for_function("document.getElementById('annotate').dataset.busy === '0'")


def log_in(page, live_server, user) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Your projects')")


def test_annotator_labels_three_items_with_the_keyboard_and_undoes_one(live_server, page, annotator, project, items):
    log_in(page, live_server, annotator)
    page.click(f"a[href='/projects/{project.pk}/annotate/']")

    page.wait_for_selector("#item:not([hidden])")
    first = shown(page)
    assert first == items[0].pk
    # Hostile HTML in the prompt and completion is shown as text, never run or parsed.
    assert page.text_content("#completion") == HOSTILE
    assert page.locator("#item img, #item script").count() == 0
    if os.environ.get("PROSPECT_SCREENSHOT"):
        page.screenshot(path=os.environ["PROSPECT_SCREENSHOT"], full_page=True)

    page.keyboard.press("1")  # good, and on to the next item at once
    second = wait_for_item_change(page, first)
    assert page.locator("#prompt .turn .role").all_text_contents() == ["system", "user"]

    # While the reason box has focus, shortcut keys type text; Escape hands them back.
    page.keyboard.press("r")
    page.keyboard.type("1 2 s too vague")
    assert shown(page) == second
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    third = wait_for_item_change(page, second)

    page.keyboard.press("1")
    fourth = wait_for_item_change(page, third)

    page.keyboard.press("Backspace")  # undo: the third item comes back
    assert wait_for_item_change(page, fourth) == third
    wait_until_saved(page)
    assert page.evaluate("window.__pwned") is None

    labels = {label.generation_id: (label.desirable, label.reason) for label in Label.objects.filter(annotator=annotator)}
    assert labels == {first: (True, ""), second: (False, "1 2 s too vague")}
    actions = list(LabelEvent.objects.filter(annotator=annotator).values_list("generation_id", "action"))
    assert actions == [(first, "created"), (second, "created"), (third, "created"), (third, "undone")]

    # The recent decisions are editable: clicking the first decision's thumb flips it.
    page.click(f"#recent li[data-generation='{first}'] button.flip")
    wait_until_saved(page)
    assert Label.objects.get(annotator=annotator, generation_id=first).desirable is False
    assert Label.objects.filter(annotator=annotator).count() == 2


def test_skip_ctrl_z_guidelines_and_the_empty_queue(live_server, page, annotator, project, items):
    Generation.objects.filter(pk__in=[g.pk for g in items[2:]]).delete()
    first, second = items[0].pk, items[1].pk
    log_in(page, live_server, annotator)
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    page.wait_for_selector("#item:not([hidden])")

    page.keyboard.press("g")
    assert page.is_visible("#guidelines") and "kind" in page.text_content("#guidelines")
    page.keyboard.press("Escape")
    assert not page.is_visible("#guidelines")

    page.keyboard.press("s")  # skip the first item: it comes back after the others
    assert wait_for_item_change(page, first) == second
    page.keyboard.press("1")
    assert wait_for_item_change(page, second) == first
    page.keyboard.press("Control+z")  # undo brings the second item back in front
    assert wait_for_item_change(page, first) == second
    wait_until_saved(page)
    assert not Label.objects.exists()

    page.keyboard.press("2")
    assert wait_for_item_change(page, second) == first
    page.keyboard.press("2")
    page.wait_for_selector("#empty:not([hidden])")
    assert "Nothing left for you to label" in page.text_content("#empty")
    wait_until_saved(page)
    assert page.text_content("#mine-progress") == "2 / 2"
    labels = dict(Label.objects.filter(annotator=annotator).values_list("generation_id", "desirable"))
    assert labels == {first: False, second: False}
