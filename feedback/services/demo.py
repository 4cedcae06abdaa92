"""The demo that `manage.py quickstart` sets up: the offline tiny model, a project, two accounts
and a few dozen items to label. Every step is idempotent, so a re-run changes nothing and prints
the same credentials."""
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction

from feedback.models import Generation, Membership, Project
from trainer.services.storage import tiny_model_dir

DEMO_PROJECT_NAME = "Demo"
DEMO_ITEMS = Path(__file__).resolve().parent.parent / "demo" / "items.jsonl"
DEMO_GUIDELINES = """\
# Demo: teach a tiny model to talk about animals

The demo model is tiny and writes short, simple sentences. Some of them are about an animal
(a cat, dog, fox, owl, horse, rabbit, duck, bear, goat, mouse, frog or bird); most are not.

- Press **1** (👍) when the completion **names an animal**.
- Press **2** (👎) when it does not.
- Press **S** to skip an item you are unsure about.

A short reason (press **R**) is optional. After a training run on your labels, the next round's
completions should mention animals more often: the project page shows the rate per round.
"""
DEMO_ACCOUNTS = (
    ("demo-admin", Membership.Role.ADMIN),
    ("demo-annotator", Membership.Role.ANNOTATOR),
)


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: str


@dataclass(frozen=True)
class ModelStatus:
    path: Path
    built_now: bool


@dataclass(frozen=True)
class ItemsStatus:
    loaded_now: int
    total: int


def ensure_tiny_model(path: Path | None = None) -> ModelStatus:
    """Build the offline demo model unless a complete one is already there."""
    from trainer.kto.tiny import build_tiny_model, is_valid_build

    path = path or tiny_model_dir()
    if is_valid_build(path):
        return ModelStatus(path, built_now=False)
    build_tiny_model(path)
    return ModelStatus(path, built_now=True)


def credentials_file() -> Path:
    return Path(settings.DATA_DIR) / "demo_credentials.json"


def _stored_passwords() -> dict[str, str]:
    try:
        return json.loads(credentials_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _store_passwords(passwords: dict[str, str]) -> None:
    path = credentials_file()
    # Readable by the owner only: these are live passwords.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(passwords, handle, indent=2)


def ensure_demo_project(base_model: Path) -> Project:
    project, _ = Project.objects.get_or_create(
        name=DEMO_PROJECT_NAME,
        defaults={
            "base_model": str(base_model),
            "guidelines": DEMO_GUIDELINES,
            # The tiny model needs a far higher learning rate than a real one to change visibly
            # after a few dozen labels (see trainer/kto/tiny.py).
            "learning_rate": 5e-4,
            "batch_size": 8,
            "epochs": 2,
        },
    )
    return project


def ensure_demo_accounts(project: Project) -> list[Account]:
    """One project admin (also a superuser, so the Django admin works too) and one annotator.
    Passwords are random, generated once and kept in DATA_DIR; an account whose password no longer
    matches the stored one (e.g. the file was deleted) gets a new one."""
    users = get_user_model()
    passwords = _stored_passwords()
    accounts = []
    with transaction.atomic():
        for username, role in DEMO_ACCOUNTS:
            password = passwords.get(username) or secrets.token_urlsafe(12)
            passwords[username] = password
            is_admin = role == Membership.Role.ADMIN
            user, created = users.objects.get_or_create(
                username=username, defaults={"is_staff": is_admin, "is_superuser": is_admin}
            )
            if created or not user.check_password(password):
                user.set_password(password)
                user.save()
            Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
            accounts.append(Account(username, password, role))
        _store_passwords(passwords)
    return accounts


def ensure_demo_items(project: Project, importer) -> ItemsStatus:
    """Load the bundled items through the import service, once: a project that already has items
    is left as it is."""
    existing = Generation.objects.filter(round__project=project).count()
    if existing:
        return ItemsStatus(loaded_now=0, total=existing)
    from feedback.services.imports import import_file

    with DEMO_ITEMS.open("rb") as handle:
        import_file(project, File(handle, name=DEMO_ITEMS.name), user=importer, filename=DEMO_ITEMS.name)
    total = Generation.objects.filter(round__project=project).count()
    return ItemsStatus(loaded_now=total, total=total)
