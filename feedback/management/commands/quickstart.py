"""`manage.py quickstart`: set up the demo and run it (web server + a real Celery worker).

Safe to run again: every setup step is idempotent and the same credentials are printed.
"""
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from feedback.services import demo

WORKER_QUEUES = "default,generation,training"
WORKER_STOP_SECONDS = 30


class Command(BaseCommand):
    help = (
        "Migrate, build the offline demo model, create a demo project with an admin and an annotator "
        "account and items to label, then run a Celery worker and the web server until Ctrl+C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Web server port (default 8000).")
        parser.add_argument("--host", default="127.0.0.1", help="Web server address (default 127.0.0.1).")
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")
        parser.add_argument("--no-serve", action="store_true", help="Do not start the web server.")

    def handle(self, *args, port, host, no_worker, no_serve, **options):
        if not no_serve:
            _require_free_port(host, port)

        self._step("Migrating the database")
        call_command("migrate", interactive=False, verbosity=0)

        self._step("Checking the offline demo model")
        model = demo.ensure_tiny_model()
        self.stdout.write(f"  {'Built' if model.built_now else 'Already there'}: {model.path}")

        self._step("Creating the demo project, accounts and items")
        project = demo.ensure_demo_project(model.path)
        accounts = demo.ensure_demo_accounts(project)
        admin = next(a for a in accounts if a.role == "admin")
        items = demo.ensure_demo_items(project, importer=_user(admin.username))
        loaded = f"{items.loaded_now} loaded now" if items.loaded_now else "already loaded"
        self.stdout.write(f"  Project \"{project.name}\" (id {project.pk}): {items.total} items ({loaded})")

        url = f"http://{_display_host(host)}:{port}/"
        self._summary(url, project, accounts, serving=not no_serve, worker=not no_worker)
        if no_serve and no_worker:
            return
        self._run(host, port, serve=not no_serve, worker=not no_worker)

    # ---- running ------------------------------------------------------------------------------

    def _run(self, host, port, *, serve: bool, worker: bool):
        # A plain `kill` of this command must also stop its children: turn SIGTERM into Ctrl+C.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        children = []
        try:
            if worker:
                children.append(("worker", _start_worker()))
            if serve:
                children.append(("web server", _start_web_server(host, port)))
            self.stdout.write(self.style.SUCCESS("Press Ctrl+C to stop."))
            while True:
                for name, process in children:
                    if process.poll() is not None:
                        raise CommandError(f"The {name} stopped (exit code {process.returncode}).")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for name, process in reversed(children):
                _stop(process)
                self.stdout.write(f"  {name} stopped")

    # ---- output -------------------------------------------------------------------------------

    def _step(self, text):
        self.stdout.write(self.style.MIGRATE_HEADING(text))

    def _summary(self, url, project, accounts, *, serving, worker):
        lines = ["", self.style.SUCCESS("Prospect demo is ready."), ""]
        if serving:
            lines.append(f"  Open       {url}")
        for account in accounts:
            title = "Admin" if account.role == "admin" else "Annotator"
            lines.append(f"  {title:<10} {account.username} / {account.password}")
        lines.append(f"  Annotate   {url}projects/{project.pk}/annotate/  (keys: 1 good, 2 bad, S skip, Backspace undo)")
        lines.append(f"  Project    {url}projects/{project.pk}/  (admin: rounds, training, export)")
        lines.append(f"  Worker     {'celery, queues ' + WORKER_QUEUES if worker else 'not started (--no-worker)'}")
        lines.append(f"  Data       {settings.DATA_DIR}  (passwords kept in {demo.credentials_file().name})")
        lines.append("")
        self.stdout.write("\n".join(lines))


def _user(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _require_free_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port} ({error.strerror}). Pass --port to pick another.")


def _start_worker() -> subprocess.Popen:
    command = [
        sys.executable, "-m", "celery", "-A", "feedback", "worker",
        "-Q", WORKER_QUEUES, "--concurrency", "1", "--loglevel", "INFO", "-n", "quickstart@%h",
    ]
    # Its own session: Ctrl+C reaches only this command, which then stops the worker warmly.
    return subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)


def _start_web_server(host: str, port: int) -> subprocess.Popen:
    command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", f"{host}:{port}", "--noreload"]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (a Celery worker finishes its current task), then SIGKILL if it takes too long."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
