"""The data-collection model. Rules that must always hold live in the database as constraints."""
import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


def validate_positive(value) -> None:
    """Strictly greater than zero (MinValueValidator(0) would let 0 through)."""
    if value is not None and value <= 0:
        raise ValidationError("Must be greater than 0.", code="positive")


def validate_below_one(value) -> None:
    if value is not None and value >= 1:
        raise ValidationError("Must be less than 1.", code="below_one")


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    base_model = models.CharField(
        max_length=500, help_text="Hugging Face hub name or local directory of the starting model."
    )
    labels_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Distinct annotators each generation needs."
    )
    annotators_see_others = models.BooleanField(
        default=False, help_text="Whether annotators may read each other's labels."
    )
    lease_minutes = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)], help_text="How long an item stays reserved for the annotator who took it."
    )
    # Generation settings (round k samples from the active checkpoint with these).
    samples_per_prompt = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    max_new_tokens = models.PositiveIntegerField(
        default=48, validators=[MinValueValidator(1), MaxValueValidator(4096)]
    )
    temperature = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(5.0)])
    top_p = models.FloatField(default=0.95, validators=[validate_positive, MaxValueValidator(1.0)])
    # Training settings (defaults for a run; a run may override them).
    beta = models.FloatField(default=0.1, validators=[validate_positive])
    desirable_weight = models.FloatField(default=1.0, validators=[validate_positive])
    undesirable_weight = models.FloatField(default=1.0, validators=[validate_positive])
    learning_rate = models.FloatField(default=5e-6, validators=[validate_positive, validate_below_one])
    epochs = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    batch_size = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(2)], help_text="At least 2: KTO's KL estimate pairs examples."
    )
    use_lora = models.BooleanField(default=False)
    auto_activate = models.BooleanField(
        default=False,
        help_text="Activate a successful run's checkpoint and open the next round automatically.",
    )
    active_checkpoint = models.ForeignKey(
        "trainer.Checkpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The checkpoint the next round generates from (empty: the base model).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(labels_per_item__gte=1), name="project_labels_per_item_gte_1"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="project_lease_minutes_gte_1"),
            models.CheckConstraint(condition=Q(samples_per_prompt__gte=1), name="project_samples_gte_1"),
            models.CheckConstraint(
                condition=Q(max_new_tokens__gte=1, max_new_tokens__lte=4096), name="project_max_new_tokens_range"
            ),
            models.CheckConstraint(condition=Q(temperature__gte=0, temperature__lte=5), name="project_temperature_range"),
            models.CheckConstraint(condition=Q(top_p__gt=0, top_p__lte=1), name="project_top_p_range"),
            models.CheckConstraint(condition=Q(beta__gt=0), name="project_beta_gt_0"),
            models.CheckConstraint(condition=Q(desirable_weight__gt=0), name="project_desirable_weight_gt_0"),
            models.CheckConstraint(condition=Q(undesirable_weight__gt=0), name="project_undesirable_weight_gt_0"),
            models.CheckConstraint(condition=Q(learning_rate__gt=0, learning_rate__lt=1), name="project_lr_range"),
            models.CheckConstraint(condition=Q(epochs__gte=1), name="project_epochs_gte_1"),
            # KTO's KL reference point needs at least two examples per micro-batch.
            models.CheckConstraint(condition=Q(batch_size__gte=2), name="project_batch_size_gte_2"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ANNOTATOR = "annotator"
        ADMIN = "admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project"),
            models.CheckConstraint(condition=Q(role__in=["annotator", "admin"]), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


def prompt_hash(content) -> str:
    """Stable hash of a prompt (a string or a list of chat messages) for per-project dedup."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField(blank=True, help_text="A plain-text prompt (empty for chat prompts).")
    messages = models.JSONField(
        null=True, blank=True, help_text='Chat prompt: a list of {"role", "content"} messages.'
    )
    content_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="prompt_unique_per_project"),
            # Exactly one of text and messages carries the prompt.
            models.CheckConstraint(
                condition=(Q(messages__isnull=True) & ~Q(text="")) | (Q(messages__isnull=False) & Q(text="")),
                name="prompt_text_xor_messages",
            ),
        ]

    @property
    def content(self):
        """The prompt as imported: a string, or a list of messages."""
        return self.messages if self.messages is not None else self.text

    def save(self, *args, **kwargs):
        self.content_hash = prompt_hash(self.content)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        text = self.text or " / ".join(str(m.get("content", "")) for m in self.messages or [])
        return text[:80]


class Round(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"  # collecting labels (imported items, or generation finished)
        GENERATING = "generating"
        FAILED = "failed"
        CLOSED = "closed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    checkpoint = models.ForeignKey(
        "trainer.Checkpoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rounds",
        help_text="The checkpoint this round generates from (empty: the base model).",
    )
    prompt_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Sample this many prompts (empty: all).")
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_unique_number_per_project"),
            models.CheckConstraint(condition=Q(number__gte=1), name="round_number_gte_1"),
            models.CheckConstraint(
                condition=Q(status__in=["open", "generating", "failed", "closed"]), name="round_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} round {self.number}"


class Generation(models.Model):
    class Source(models.TextChoices):
        IMPORTED = "imported"
        CHECKPOINT = "checkpoint"  # sampled by Prospect (from the base model when checkpoint is empty)

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="generations")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="generations")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORTED)
    checkpoint = models.ForeignKey(
        "trainer.Checkpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="generations"
    )
    text = models.TextField()
    sampling = models.JSONField(default=dict, blank=True, help_text="Sampling parameters and seed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(source__in=["imported", "checkpoint"]), name="generation_source_valid"),
        ]
        indexes = [models.Index(fields=["round", "id"])]

    def __str__(self) -> str:
        return self.text[:80]


class Label(models.Model):
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="labels")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labels")
    desirable = models.BooleanField()
    reason = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "annotator"], name="label_one_per_annotator"),
        ]
        indexes = [models.Index(fields=["annotator", "updated_at"])]

    def __str__(self) -> str:
        return f"{'👍' if self.desirable else '👎'} {self.annotator} on {self.generation_id}"


class LabelEvent(models.Model):
    """Append-only history of every label change, so undo and edits are auditable."""

    class Action(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        UNDONE = "undone"
        DELETED = "deleted"

    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="label_events")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="label_events")
    action = models.CharField(max_length=16, choices=Action.choices)
    desirable = models.BooleanField(null=True, help_text="The value after the change (empty when removed).")
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["created", "updated", "undone", "deleted"]), name="label_event_action_valid"
            ),
        ]


class Skip(models.Model):
    """An annotator passed on an item; it goes back to the pool and returns to them last."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["generation", "annotator"], name="skip_one_per_annotator"),
        ]


class Assignment(models.Model):
    """A lease: the item is reserved for this annotator until expires_at."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["generation", "annotator"], name="assignment_one_per_annotator"),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="assignment_expires_after_creation"),
        ]
