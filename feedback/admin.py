"""Django admin for every model (feedback and trainer), for day-to-day fixes.

Big foreign keys use raw id inputs so change pages stay fast on large projects, and list pages
join what their columns print (Django joins only non-null keys by itself); the label history
(LabelEvent) is read-only because it is the audit trail.
"""
from django.contrib import admin

from trainer.models import Checkpoint, TrainingRun

from .models import Assignment, Generation, Label, LabelEvent, Membership, Project, Prompt, Round, Skip


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "base_model", "labels_per_item", "annotators_see_others", "active_checkpoint",
                    "created_at"]
    search_fields = ["name", "base_model"]
    list_filter = ["annotators_see_others", "use_lora", "auto_activate"]
    raw_id_fields = ["active_checkpoint"]
    list_select_related = ["active_checkpoint__project"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "guidelines", "base_model", "active_checkpoint"]}),
        ("Annotation", {"fields": ["labels_per_item", "annotators_see_others", "lease_minutes"]}),
        ("Generation", {"fields": ["samples_per_prompt", "max_new_tokens", "temperature", "top_p"]}),
        ("Training", {"fields": ["beta", "desirable_weight", "undesirable_weight", "learning_rate", "epochs",
                                 "batch_size", "use_lora", "auto_activate"]}),
    ]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    raw_id_fields = ["user", "project"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "project", "created_at"]
    list_filter = ["project"]
    search_fields = ["text", "content_hash"]
    raw_id_fields = ["project"]
    readonly_fields = ["content_hash", "created_at"]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "number", "status", "checkpoint", "progress_done", "progress_total", "created_at",
                    "finished_at"]
    list_filter = ["status", "project"]
    search_fields = ["project__name"]
    raw_id_fields = ["project", "checkpoint"]
    list_select_related = ["project", "checkpoint__project"]


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "round", "source", "checkpoint", "created_at"]
    list_filter = ["source", "round__project", "round__status"]
    search_fields = ["text", "prompt__text"]
    raw_id_fields = ["prompt", "round", "checkpoint"]
    list_select_related = ["round__project", "checkpoint__project"]


class LabelEventInline(admin.TabularInline):
    model = LabelEvent
    extra = 0
    can_delete = False
    fields = ["at", "action", "desirable", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["id", "generation", "annotator", "desirable", "reason", "created_at", "updated_at"]
    list_filter = ["desirable", "generation__round__project", "generation__round"]
    search_fields = ["annotator__username", "reason", "generation__text"]
    raw_id_fields = ["generation", "annotator"]
    list_select_related = ["annotator", "generation"]
    date_hierarchy = "created_at"
    inlines = [LabelEventInline]


@admin.register(LabelEvent)
class LabelEventAdmin(admin.ModelAdmin):
    list_display = ["id", "at", "action", "annotator", "generation", "label", "desirable"]
    list_filter = ["action", "generation__round__project"]
    search_fields = ["annotator__username", "reason"]
    list_select_related = ["annotator", "generation", "label__annotator"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # view-only: the audit trail is never edited

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Skip)
class SkipAdmin(admin.ModelAdmin):
    list_display = ["id", "generation", "annotator", "created_at"]
    list_filter = ["generation__round__project"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["generation", "annotator"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "generation", "annotator", "created_at", "expires_at"]
    list_filter = ["generation__round__project"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["generation", "annotator"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "step", "total_steps", "created_by", "created_at", "finished_at"]
    list_filter = ["status", "project"]
    search_fields = ["project__name", "task_id", "error"]
    raw_id_fields = ["project", "created_by", "start_checkpoint"]
    list_select_related = ["project", "created_by"]
    readonly_fields = ["examples", "metrics", "heartbeat_at", "started_at", "finished_at", "task_id"]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "run", "parent", "path", "created_at"]
    list_filter = ["project"]
    search_fields = ["path", "project__name"]
    raw_id_fields = ["project", "parent", "run"]
    list_select_related = ["project", "run", "parent__project"]
