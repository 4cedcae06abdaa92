"""Worker side of every completion Prospect samples (rounds and playground).

The engine keeps the last model it loaded cached in the worker process (keyed by path), so a
generation worker serving one active checkpoint loads it once.
"""
from django.conf import settings

# Sequences sampled together on the device; per-batch memory grows with it.
GENERATE_BATCH_SIZE = 16


def generate_completions(model_path: str, prompts: list, *, n: int, max_new_tokens: int, temperature: float,
                         top_p: float, seed: int) -> list[list[str]]:
    from trainer.kto import generate

    return generate(model_path, prompts, n=n, max_new_tokens=max_new_tokens, temperature=temperature,
                    top_p=top_p, seed=seed, batch_size=GENERATE_BATCH_SIZE, device=settings.PROSPECT_DEVICE)
