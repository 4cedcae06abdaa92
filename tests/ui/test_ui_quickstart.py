"""`manage.py quickstart --no-serve --no-worker`: sets up the demo, and a re-run changes nothing."""
import io
import stat

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from feedback.models import Generation, Label, Membership, Project
from feedback.services import demo
from trainer.kto.tiny import is_valid_build

pytestmark = pytest.mark.django_db


def run_quickstart() -> str:
    out = io.StringIO()
    call_command("quickstart", "--no-serve", "--no-worker", stdout=out)
    return out.getvalue()


def demo_item_count() -> int:
    return sum(1 for line in demo.DEMO_ITEMS.read_text().splitlines() if line.strip())


def printed_password(output: str, username: str) -> str:
    line = next(line for line in output.splitlines() if f" {username} / " in line)
    return line.split(" / ", 1)[1].strip()


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.mark.slow  # builds the tiny model (about 20 s on two cores)
def test_quickstart_creates_the_demo_and_is_idempotent(data_dir):
    first = run_quickstart()

    project = Project.objects.get(name=demo.DEMO_PROJECT_NAME)
    model_dir = data_dir / "models" / "tiny"
    assert project.base_model == str(model_dir)
    assert is_valid_build(model_dir)
    built_at = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert project.guidelines
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"demo-admin": "admin", "demo-annotator": "annotator"}
    assert Generation.objects.filter(round__project=project).count() == demo_item_count() > 24
    assert not Label.objects.exists()  # the demo items are there to be labelled

    # Credentials are printed, work, and are kept where only the owner can read them.
    passwords = {name: printed_password(first, name) for name in ("demo-admin", "demo-annotator")}
    for name, password in passwords.items():
        assert authenticate(username=name, password=password) is not None
    assert stat.S_IMODE(demo.credentials_file().stat().st_mode) == 0o600
    assert f"projects/{project.pk}/annotate/" in first

    second = run_quickstart()
    assert Project.objects.count() == 1
    assert get_user_model().objects.filter(username__startswith="demo-").count() == 2
    assert Membership.objects.filter(project=project).count() == 2
    assert Generation.objects.filter(round__project=project).count() == demo_item_count()
    assert {name: printed_password(second, name) for name in passwords} == passwords
    assert "already loaded" in second
    assert "Already there" in second and (model_dir / "model.safetensors").stat().st_mtime_ns == built_at


def test_quickstart_refuses_a_busy_port(data_dir):
    import socket

    from django.core.management.base import CommandError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match="--port"):
            call_command("quickstart", "--no-worker", "--port", str(port), stdout=io.StringIO())
    assert not Project.objects.exists()  # refused before touching anything
