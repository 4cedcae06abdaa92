"""The annotator pages: login, the project list and the annotation page shell."""
import json

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_login(client, project):
    for url in (reverse("home"), reverse("annotate", args=[project.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_login_with_the_right_password_lands_on_the_project_list(client, annotator, project):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    response = client.post(reverse("login"), {"username": "ann", "password": "pw-Secret-123"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    assert project.name in response.content.decode()


def test_login_with_a_wrong_password_says_so(client, annotator):
    response = client.post(reverse("login"), {"username": "ann", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post(client_as, annotator):
    client = client_as(annotator)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_home_lists_only_my_projects_and_links_admins_to_the_project_page(client_as, make_user, project):
    from feedback.models import Project

    other = Project.objects.create(name="Secret project", base_model="tiny")
    annotator = make_user("ann", project=project, role="annotator")
    admin = make_user("boss", project=other, role="admin")

    page = client_as(annotator).get(reverse("home")).content.decode()
    assert project.name in page and other.name not in page
    assert reverse("annotate", args=[project.pk]) in page
    assert f'href="/projects/{project.pk}/"' not in page

    page = client_as(admin).get(reverse("home")).content.decode()
    assert other.name in page and project.name not in page
    assert f'href="/projects/{other.pk}/"' in page


def test_home_for_a_user_without_projects_says_what_to_do(client_as, outsider, project):
    page = client_as(outsider).get(reverse("home")).content.decode()
    assert "not a member of any project" in page
    assert project.name not in page


def test_superuser_sees_every_project(client_as, superuser, project):
    page = client_as(superuser).get(reverse("home")).content.decode()
    assert project.name in page and f'href="/projects/{project.pk}/"' in page


def test_annotate_page_is_for_members_only(client_as, outsider, project):
    assert client_as(outsider).get(reverse("annotate", args=[project.pk])).status_code == 404


def test_annotate_page_for_an_unknown_project_is_404(client_as, annotator):
    assert client_as(annotator).get(reverse("annotate", args=[999999])).status_code == 404


@pytest.mark.parametrize("who", ["annotator", "admin_user", "superuser"])
def test_annotate_page_renders_the_shell_with_keys_and_guidelines(request, client_as, project, who):
    user = request.getfixturevalue(who)
    response = client_as(user).get(reverse("annotate", args=[project.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for needed in ('id="btn-good"', 'id="btn-bad"', 'id="btn-skip"', 'id="btn-undo"', 'id="reason"',
                   'id="guidelines"', "feedback/annotate.js", 'data-csrf="'):
        assert needed in page
    # The key legend is on screen, and the guidelines' Markdown is rendered.
    assert "<kbd>1</kbd> good and next" in page and "<kbd>Backspace</kbd>" in page
    assert "Be <em>kind</em>." in page


def test_project_page_link_only_for_admins(client_as, annotator, admin_user, project):
    link = f'href="/projects/{project.pk}/"'
    assert link not in client_as(annotator).get(reverse("annotate", args=[project.pk])).content.decode()
    assert link in client_as(admin_user).get(reverse("annotate", args=[project.pk])).content.decode()


def test_recent_decisions_are_mine_newest_first(client_as, make_user, project, make_item, make_label):
    me = make_user("me", project=project, role="annotator")
    other = make_user("other", project=project, role="annotator")
    first, second, theirs = make_item("p1", "c1"), make_item("p2", "c2"), make_item("p3", "c3")
    make_label(first, me, True, "fine")
    make_label(second, me, False)
    make_label(theirs, other, True)

    response = client_as(me).get(reverse("annotate", args=[project.pk]))
    recent = json.loads(_json_script(response.content.decode(), "recent-data"))
    assert [entry["generation"] for entry in recent] == [second.pk, first.pk]
    assert recent[0]["desirable"] is False and recent[1]["reason"] == "fine"
    assert recent[1]["item"] == {"generation": first.pk, "prompt": "p1", "completion": "c1", "round": 1}


def _json_script(page: str, element_id: str) -> str:
    start = page.index(f'<script id="{element_id}" type="application/json">')
    start = page.index(">", start) + 1
    return page[start:page.index("</script>", start)]
