"""Request and response shapes of the feedback API. Validation of single fields lives here;
anything that needs the database state lives in feedback/services."""
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from feedback.models import Label, Membership, Project
from feedback.permissions import role_in
from feedback.services.limits import REASON_MAX_CHARS


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text='Your role here: "admin", "annotator" (superusers: "admin").')

    class Meta:
        model = Project
        fields = [
            "id", "name", "guidelines", "base_model", "labels_per_item", "annotators_see_others",
            "lease_minutes", "samples_per_prompt", "max_new_tokens", "temperature", "top_p", "beta",
            "desirable_weight", "undesirable_weight", "learning_rate", "epochs", "batch_size", "use_lora",
            "auto_activate", "active_checkpoint", "created_at", "role",
        ]
        read_only_fields = ["id", "active_checkpoint", "created_at"]

    def get_role(self, project) -> str | None:
        if hasattr(project, "my_role"):  # lists annotate it (permissions.with_role) instead of a query per row
            return project.my_role
        return role_in(self.context["request"].user, project)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "username", "role", "created_at"]
        read_only_fields = fields


class MemberInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class UserCreateSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.RegexField(
        r"^[\w.@+-]+\Z", max_length=150, help_text="Letters, digits and @/./+/-/_ only."
    )
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    email = serializers.EmailField(required=False, allow_blank=True, default="")

    def validate_username(self, value):
        if get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return value

    def validate(self, attrs):
        candidate = get_user_model()(username=attrs["username"], email=attrs.get("email", ""))
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from None
        return attrs


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='Send as "Authorization: Token <token>".')


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="JSONL, CSV, TXT or Parquet (by extension). Rows: {prompt} | {prompt, completion} | "
        "{prompt, completion, label} | {prompt, chosen, rejected}."
    )


class ImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    round = serializers.IntegerField(
        allow_null=True, help_text="Number of the round the generations went into (null: the file held prompts only)."
    )
    prompts_created = serializers.IntegerField()
    prompts_deduplicated = serializers.IntegerField()
    generations_created = serializers.IntegerField()
    generations_deduplicated = serializers.IntegerField()
    labels_created = serializers.IntegerField()
    labels_updated = serializers.IntegerField()
    ignored_fields = serializers.ListField(child=serializers.CharField(), help_text="Columns that were not used.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The field at fault, when one is.")
    line = serializers.IntegerField(required=False, allow_null=True, help_text="Imports: the file's line (Parquet: row).")


class ProgressSerializer(serializers.Serializer):
    mine_done = serializers.IntegerField(help_text="Your labels in this round.")
    mine_total = serializers.IntegerField(help_text="Your labels plus the items you can still take in this round.")
    round_done = serializers.IntegerField(help_text="Items of the round with all the labels they need.")
    round_total = serializers.IntegerField()


class QueueItemSerializer(serializers.Serializer):
    generation = serializers.IntegerField(help_text="Id to send with the label.")
    project = serializers.IntegerField()
    round = serializers.IntegerField(help_text="Round number.")
    round_id = serializers.IntegerField()
    prompt = serializers.JSONField(help_text="A string, or a list of {role, content} messages. Plain text: escape it.")
    completion = serializers.CharField(help_text="Model output. Plain text: escape it.")
    lease_expires_at = serializers.DateTimeField(help_text="The item is reserved for you until then.")
    skipped = serializers.BooleanField(help_text="You skipped this item before.")
    progress = ProgressSerializer()


class SkipInputSerializer(serializers.Serializer):
    generation = serializers.IntegerField()


class LabelSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="generation.round.project_id", read_only=True)
    round = serializers.IntegerField(source="generation.round.number", read_only=True)
    annotator_username = serializers.CharField(source="annotator.username", read_only=True)
    prompt = serializers.JSONField(source="generation.prompt.content", read_only=True)
    completion = serializers.CharField(source="generation.text", read_only=True)

    class Meta:
        model = Label
        fields = [
            "id", "generation", "project", "round", "annotator", "annotator_username", "desirable", "reason",
            "prompt", "completion", "created_at", "updated_at",
        ]
        read_only_fields = fields


class LabelInputSerializer(serializers.Serializer):
    generation = serializers.IntegerField()
    desirable = serializers.BooleanField(help_text="true: thumbs up, false: thumbs down.")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=REASON_MAX_CHARS)


class LabelPatchSerializer(serializers.Serializer):
    desirable = serializers.BooleanField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_MAX_CHARS)


class UndoInputSerializer(serializers.Serializer):
    project = serializers.IntegerField(required=False, allow_null=True, help_text="Limit the undo to this project.")


class UndoneLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    generation = serializers.IntegerField()
    desirable = serializers.BooleanField()
    reason = serializers.CharField()


class UndoResultSerializer(serializers.Serializer):
    undone = UndoneLabelSerializer(help_text="The label that was removed.")
    item = QueueItemSerializer(help_text="The same item, leased to you again: show it next.")
