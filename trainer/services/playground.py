"""The playground: one completion from the project's active checkpoint, computed on a worker.

The web process only enqueues a task on the "generation" queue and waits for its result; the
worker keeps the model loaded between requests (see model_cache).
"""
import logging

from django.conf import settings

from .errors import InvalidRequest, WorkerTimeout, WorkerUnavailable

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 20_000
MAX_NEW_TOKENS = 1024


def validate_prompt(prompt):
    """A non-empty string, or a list of {"role", "content"} chat messages."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequest({"prompt": ["must not be empty"]})
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest({"prompt": [f"must be at most {MAX_PROMPT_CHARS} characters"]})
        return prompt
    if isinstance(prompt, list) and prompt and all(
        isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str)
        for message in prompt
    ):
        if sum(len(message["content"]) for message in prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest({"prompt": [f"must be at most {MAX_PROMPT_CHARS} characters"]})
        return [{"role": message["role"], "content": message["content"]} for message in prompt]
    raise InvalidRequest({"prompt": ['must be a string or a list of {"role", "content"} messages']})


def validate_options(project, options: dict | None) -> dict:
    """Sampling options with the project's settings as defaults."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequest("options must be an object")
    resolved = {"max_new_tokens": project.max_new_tokens, "temperature": project.temperature,
                "top_p": project.top_p, "seed": 0}
    checks = {
        "max_new_tokens": (int, lambda v: 1 <= v <= MAX_NEW_TOKENS,
                           f"must be a whole number from 1 to {MAX_NEW_TOKENS}"),
        "temperature": (float, lambda v: 0 <= v <= 5, "must be a number from 0 to 5"),
        "top_p": (float, lambda v: 0 < v <= 1, "must be a number greater than 0 and at most 1"),
        "seed": (int, lambda v: 0 <= v < 2**32, "must be a whole number from 0 to 4294967295"),
    }
    errors = {}
    for name in sorted(set(options) - set(checks)):
        errors[name] = [f"unknown option; allowed: {', '.join(sorted(checks))}"]
    for name, (kind, ok, message) in checks.items():
        if options.get(name) is None:
            continue
        value = options[name]
        valid_type = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            kind is float or float(value).is_integer())
        if valid_type and ok(kind(value)):
            resolved[name] = kind(value)
        else:
            errors[name] = [message]
    if errors:
        raise InvalidRequest(errors)
    return resolved


def generate_text(project, prompt, options: dict | None = None) -> str:
    """Enqueue one completion on the generation queue and wait for it.

    Raises InvalidRequest for a bad prompt or option, WorkerUnavailable (503) when the broker is
    unreachable or the worker failed, WorkerTimeout (504) when no worker answered in time."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from trainer.tasks import playground_generate

    prompt = validate_prompt(prompt)
    sampling = validate_options(project, options)
    timeout = settings.PROSPECT_PLAYGROUND_TIMEOUT
    try:
        # expires: a worker that only gets to it after the caller gave up drops it.
        result = playground_generate.apply_async(args=[project.pk, prompt, sampling], expires=timeout)
    except Exception as exc:
        log.exception("could not enqueue a playground generation")
        raise WorkerUnavailable("The task broker cannot be reached; try again later.") from exc
    try:
        return result.get(timeout=timeout, propagate=True)
    except CeleryTimeout:
        raise WorkerTimeout(f"No generation worker answered within {timeout:g} s; is one running "
                            "on the 'generation' queue?") from None
    except Exception as exc:
        raise WorkerUnavailable(f"The generation worker failed: {type(exc).__name__}: {exc}") from exc
    finally:
        try:
            result.forget()
        except Exception:  # a result backend without forget() keeps the result until it expires
            pass


def complete(project_id: int, prompt, sampling: dict) -> str:
    """Worker side: sample one completion from what the project generates from now."""
    from feedback.models import Project

    from . import storage
    from .sampling import generate_completions

    project = Project.objects.select_related("active_checkpoint").get(pk=project_id)
    model = storage.model_path(project.active_checkpoint, project.base_model)
    return generate_completions(model, [prompt], n=1, **sampling)[0][0]
