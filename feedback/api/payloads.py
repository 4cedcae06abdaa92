"""The item an annotator is shown, as one self-sufficient JSON object (see QueueItemSerializer)."""
from feedback.models import Assignment, Generation, Skip
from feedback.services.queue import round_progress


def queue_item(user, generation: Generation) -> dict:
    lease = Assignment.objects.filter(generation=generation, annotator=user).values_list("expires_at", flat=True)
    return {
        "generation": generation.pk,
        "project": generation.round.project_id,
        "round": generation.round.number,
        "round_id": generation.round_id,
        "prompt": generation.prompt.content,
        "completion": generation.text,
        "lease_expires_at": lease.first(),
        "skipped": Skip.objects.filter(generation=generation, annotator=user).exists(),
        "progress": round_progress(user, generation.round),
    }
