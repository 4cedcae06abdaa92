"""Untrusted text (prompts, completions, reasons, guidelines, names) never reaches a page as HTML."""
import re
from pathlib import Path

import pytest
from django.urls import reverse

from feedback.rendering import is_safe_url, render_markdown

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
HOSTILE = f"{SCRIPT} and {IMG} & </textarea></script>"
ANNOTATE_JS = Path(__file__).resolve().parents[2] / "feedback" / "static" / "feedback" / "annotate.js"


def _assert_inert(page: str) -> None:
    assert SCRIPT not in page
    assert "<img" not in page and "<iframe" not in page  # the pages themselves use neither
    # The only script elements are the page's own: its JS file and the JSON data island.
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'type="application/json"' in tag or "feedback/annotate.js" in tag, tag


@pytest.mark.django_db
def test_hostile_prompt_completion_reason_and_guidelines_are_escaped(
    client_as, make_user, project, make_item, make_label
):
    project.name = f"Proj {SCRIPT}"
    project.guidelines = f"# Rules\n\n{HOSTILE}\n\n[click](javascript:alert(3))\n\n<div onclick=alert(4)>x</div>"
    project.save()
    user = make_user("ann", project=project, role="annotator")
    plain = make_item(HOSTILE, HOSTILE)
    chat = make_item(messages=[{"role": SCRIPT, "content": HOSTILE}], completion=HOSTILE)
    make_label(plain, user, True, HOSTILE)
    make_label(chat, user, False, HOSTILE)
    client = client_as(user)

    for url in (reverse("home"), reverse("annotate", args=[project.pk])):
        page = client.get(url).content.decode()
        _assert_inert(page)
        assert "Proj &lt;script&gt;alert(1)&lt;/script&gt;" in page

    page = client.get(reverse("annotate", args=[project.pk])).content.decode()
    # Guidelines: raw HTML shown as text, the javascript: link defused, the Markdown still rendered.
    assert "<h1>Rules</h1>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and &lt;img" in page
    assert "&lt;div onclick=alert(4)&gt;" in page
    assert "javascript:" not in page
    # Items and reasons travel as JSON inside a data island, with < and > escaped.
    assert "\\u003Cscript\\u003Ealert(1)\\u003C/script\\u003E" in page


@pytest.mark.parametrize(
    "source, forbidden",
    [
        (SCRIPT, SCRIPT),
        (IMG, "<img"),
        ("<div>\n<iframe src=x></iframe>\n</div>", "<iframe"),
        ("text <a href=x onmouseover=alert(1)>x</a>", "<a href=x"),
        ("[x](javascript:alert(1))", "javascript:"),
        ("[x]( JaVa\tScript:alert(1))", "href"),
        ("![x](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
        ("[x](vbscript:msgbox(1))", "vbscript:"),
        ("<!-- c --><style>*{}</style>", "<style>"),
    ],
)
def test_guideline_markdown_never_passes_html_or_unsafe_links(source, forbidden):
    assert forbidden not in render_markdown(source)


def test_guideline_markdown_still_formats():
    html = render_markdown("# Title\n\n- **bold** item\n- [docs](https://example.org/a?b=1)\n\n`<code>`")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.org/a?b=1">docs</a>' in html
    assert "<code>&lt;code&gt;</code>" in html


@pytest.mark.parametrize("url", ["https://x.org", "http://x", "/relative", "page#a", "#top", "mailto:a@b.c", "?q=1"])
def test_safe_urls_are_kept(url):
    assert is_safe_url(url)


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JAVASCRIPT:x", "java\nscript:x", "data:text/html,x", "file:///etc"])
def test_unsafe_urls_are_refused(url):
    assert not is_safe_url(url)


def test_page_script_writes_untrusted_text_as_text_only():
    source = ANNOTATE_JS.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, f"annotate.js uses {sink}"
    assert "textContent" in source
