"""Size limits on what people and files may put into the database. The upload size itself is
settings.IMPORT_MAX_BYTES (an environment variable); these are per field."""

PROMPT_MAX_CHARS = 32_000  # a plain prompt, or the summed content of a message list
PROMPT_MAX_MESSAGES = 200
ROLE_MAX_CHARS = 32
COMPLETION_MAX_CHARS = 32_000
REASON_MAX_CHARS = 2_000  # matches Label.reason's max_length
