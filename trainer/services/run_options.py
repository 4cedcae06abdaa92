"""Validate a training run's overrides and resolve them against the project's defaults."""
import math

from .errors import InvalidRequest

REFERENCE_CHOICES = ("current", "base")
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", ""}


def _number(value, *, integer: bool):
    """A JSON number or a numeric string (HTML forms send strings); booleans are not numbers."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if integer else float(value)
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError
    return value


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError


def _in_range(low, high, *, integer=False, low_open=False, high_open=False):
    def check(value):
        value = _number(value, integer=integer)
        if (value <= low if low_open else value < low) or (
            high is not None and (value >= high if high_open else value > high)
        ):
            raise ValueError
        return value
    return check


# name -> (parser, message shown when the value is refused)
FIELDS = {
    "beta": (_in_range(0, 100, low_open=True), "must be a number greater than 0 and at most 100"),
    "desirable_weight": (_in_range(0, 100, low_open=True), "must be a number greater than 0 and at most 100"),
    "undesirable_weight": (_in_range(0, 100, low_open=True), "must be a number greater than 0 and at most 100"),
    "learning_rate": (_in_range(0, 1, low_open=True, high_open=True), "must be a number between 0 and 1 (exclusive)"),
    "epochs": (_in_range(1, 1000, integer=True), "must be a whole number from 1 to 1000"),
    "batch_size": (
        _in_range(2, 4096, integer=True),
        "must be a whole number from 2 to 4096 (KTO's KL estimate needs at least 2 examples per batch)",
    ),
    "max_steps": (_in_range(1, 10_000_000, integer=True), "must be a whole number of at least 1"),
    "seed": (_in_range(0, 2**32 - 1, integer=True), "must be a whole number from 0 to 4294967295"),
    "lora": (_boolean, "must be true or false"),
}


def _rounds(value, existing: set[int]) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidRequest({"rounds": ["must be a non-empty list of round numbers"]})
    try:
        numbers = sorted({_number(item, integer=True) for item in value})
    except (TypeError, ValueError):
        raise InvalidRequest({"rounds": ["must be a non-empty list of round numbers"]}) from None
    missing = [number for number in numbers if number not in existing]
    if missing:
        raise InvalidRequest({"rounds": [f"no such round in this project: {', '.join(map(str, missing))}"]})
    return numbers


def resolve_options(project, overrides: dict | None) -> dict:
    """Overrides (possibly from an HTML form) -> a complete, checked option set.

    Returns {"beta", "desirable_weight", "undesirable_weight", "learning_rate", "epochs",
    "batch_size", "lora", "max_steps", "seed", "reference", "rounds"}; raises InvalidRequest
    with {field: [message]} for every refused field at once.
    """
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise InvalidRequest("overrides must be an object of option names and values")
    options = {
        "beta": project.beta,
        "desirable_weight": project.desirable_weight,
        "undesirable_weight": project.undesirable_weight,
        "learning_rate": project.learning_rate,
        "epochs": project.epochs,
        "batch_size": project.batch_size,
        "lora": project.use_lora,
        "max_steps": None,
        "seed": 0,
        "reference": "current",
        "rounds": None,
    }
    errors = {}
    unknown = sorted(set(overrides) - set(options))
    for name in unknown:
        errors[name] = [f"unknown option; allowed: {', '.join(sorted(options))}"]
    for name, (parse, message) in FIELDS.items():
        if name in overrides and overrides[name] is not None:
            try:
                options[name] = parse(overrides[name])
            except (TypeError, ValueError):
                errors[name] = [message]
    if overrides.get("reference") is not None:
        if overrides["reference"] in REFERENCE_CHOICES:
            options["reference"] = overrides["reference"]
        else:
            errors["reference"] = ['must be "current" (the starting checkpoint) or "base" (the base model)']
    if overrides.get("rounds") is not None:
        try:
            options["rounds"] = _rounds(overrides["rounds"], set(project.rounds.values_list("number", flat=True)))
        except InvalidRequest as exc:
            errors.update(exc.detail)
    if errors:
        raise InvalidRequest(errors)
    return options
