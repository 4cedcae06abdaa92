"""Request bodies, for the schema. Validation itself lives in the services (tests call them)."""
from rest_framework import serializers


class OpenRoundSerializer(serializers.Serializer):
    prompt_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1,
        help_text="Sample this many prompts (a seeded random choice); empty or absent: all prompts.",
    )


class TrainingRunOverridesSerializer(serializers.Serializer):
    beta = serializers.FloatField(required=False, help_text="KTO beta (> 0). Default: the project's.")
    desirable_weight = serializers.FloatField(required=False, help_text="lambda_D (> 0).")
    undesirable_weight = serializers.FloatField(required=False, help_text="lambda_U (> 0).")
    learning_rate = serializers.FloatField(required=False, help_text="0 < lr < 1.")
    epochs = serializers.IntegerField(required=False, min_value=1)
    batch_size = serializers.IntegerField(required=False, min_value=2, help_text="Per process; at least 2.")
    max_steps = serializers.IntegerField(required=False, min_value=1, help_text="Stop after this many steps.")
    seed = serializers.IntegerField(required=False, min_value=0)
    lora = serializers.BooleanField(required=False, help_text="Train LoRA adapters (merged into the checkpoint).")
    reference = serializers.ChoiceField(
        choices=["current", "base"], required=False,
        help_text='"current": the starting checkpoint (default); "base": the project\'s base model.',
    )
    rounds = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Round numbers whose labels to use (default: all)."
    )


class GenerateSerializer(serializers.Serializer):
    prompt = serializers.JSONField(help_text='A string, or a list of {"role", "content"} chat messages.')
    max_new_tokens = serializers.IntegerField(required=False, min_value=1, max_value=1024)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=5)
    top_p = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False, min_value=0)


class GenerateResultSerializer(serializers.Serializer):
    completion = serializers.CharField()
    checkpoint = serializers.IntegerField(allow_null=True)
