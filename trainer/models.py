"""Training orchestration records: runs and the checkpoints they produce."""
from django.conf import settings
from django.db import models
from django.db.models import Q


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="training_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, help_text="The resolved engine configuration.")
    start_checkpoint = models.ForeignKey(
        "trainer.Checkpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The policy's starting point (empty: the base model).",
    )
    examples = models.JSONField(
        default=list,
        help_text="Snapshot of the training rows: generation id, majority label and the label ids behind it.",
    )
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text="One entry per step.")
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True, help_text="Celery worker that claimed the run.")
    phase = models.CharField(
        max_length=32, blank=True, help_text="What a running run is doing: loading, reference, training, saving."
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed", "cancelled"]),
                name="training_run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class Checkpoint(models.Model):
    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="checkpoints")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="checkpoint")
    path = models.CharField(max_length=1000, help_text="Hugging Face model directory in checkpoint storage.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Summary of the run that produced it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} of {self.project}"
