"""Batched sampling: order, n per prompt, seeds, left padding, chat prompts, progress."""
import pytest

from trainer.kto import generate

PROMPTS = ["Tell me about the lake.", "Write a short story.", "What happened yesterday?"]


def test_n_completions_per_prompt_in_prompt_order_with_progress(tiny_model):
    calls = []
    out = generate(tiny_model, PROMPTS, n=3, max_new_tokens=12, batch_size=4, progress=lambda d, t: calls.append((d, t)))
    assert [len(samples) for samples in out] == [3, 3, 3]
    assert all(isinstance(s, str) and s for samples in out for s in samples)
    assert calls[-1] == (9, 9) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_seed_makes_sampling_reproducible(tiny_model):
    first = generate(tiny_model, PROMPTS, n=2, max_new_tokens=16, seed=7)
    assert generate(tiny_model, PROMPTS, n=2, max_new_tokens=16, seed=7) == first
    assert generate(tiny_model, PROMPTS, n=2, max_new_tokens=16, seed=8) != first


def test_left_padding_gives_the_same_greedy_text_as_one_at_a_time(tiny_model):
    prompts = ["Hi.", "Tell me about the old market near the river, please."]
    together = generate(tiny_model, prompts, max_new_tokens=12, temperature=0, batch_size=2)
    alone = [generate(tiny_model, [p], max_new_tokens=12, temperature=0)[0] for p in prompts]
    assert together == alone


def test_chat_prompts_are_rendered_with_the_template(tiny_model):
    [[text]] = generate(tiny_model, [[{"role": "user", "content": "Tell me about the lake."}]], max_new_tokens=24,
                        temperature=0)
    assert "<|" not in text and text.strip()


def test_bad_arguments_are_refused(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        generate(tiny_model, PROMPTS, n=0)
    with pytest.raises(ValueError, match="top_p"):
        generate(tiny_model, PROMPTS, top_p=0)
    with pytest.raises(ValueError, match="does not exist"):
        generate(tmp_path / "missing", PROMPTS)


def test_a_hub_name_goes_to_from_pretrained_not_refused_as_a_missing_directory(monkeypatch):
    # No machine here reaches the hub: offline, transformers answers with its own "not found" error,
    # which shows the name was handed to from_pretrained rather than refused as a local path.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="cached files"):
        generate("prospect-test/no-such-model", PROMPTS, cache=False)
