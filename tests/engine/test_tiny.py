"""The tiny model: deterministic, idempotent, chat-ready, and KTO on the animal rule raises the animal rate."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from trainer.kto import TrainConfig, build_tiny_model, generate, train
from trainer.kto.tiny import mentions_animal, sample_prompts

REPO = Path(__file__).resolve().parents[2]


def digest(directory: Path) -> dict:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in ("model.safetensors", "tokenizer.json", "config.json")}


@pytest.mark.slow
def test_a_fresh_build_in_another_process_is_byte_identical(tiny_model, tmp_path):
    other = tmp_path / "again"
    code = f"from trainer.kto import build_tiny_model; build_tiny_model({str(other)!r})"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="2"), check=True,
                   timeout=180)
    assert digest(other) == digest(tiny_model)


def test_building_again_is_a_no_op(tiny_model):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_model.iterdir()}
    assert build_tiny_model(tiny_model) == tiny_model
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model.iterdir()} == before


def test_a_foreign_directory_is_not_overwritten(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a tiny-model build"):
        build_tiny_model(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_tokenizer_has_eos_pad_and_a_chat_template(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<|pad|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|user|>\nHi<|end|>\n<|assistant|>\n"
    assert tokenizer.decode(tokenizer("Any text, even ünïcode!")["input_ids"]) == "Any text, even ünïcode!"


@pytest.mark.parametrize("text,expected", [
    ("The little fox sleeps.", True), ("Two Cats.", True), ("Mice ran.", True),
    ("A category of things.", False), ("The weather was warm.", False), ("", False),
])
def test_mentions_animal_matches_whole_words(text, expected):
    assert mentions_animal(text) is expected


def animal_rate(model, prompts) -> float:
    samples = [s for group in generate(model, prompts, n=4, seed=11) for s in group]
    return sum(map(mentions_animal, samples)) / len(samples)


@pytest.mark.slow
def test_kto_on_animal_labels_raises_the_rate(tiny_model, animal_rows, tmp_path):
    """The simulation's premise: a few KTO steps on rule-labelled samples move fresh samples toward the rule."""
    fresh_prompts = sample_prompts(100, seed=99)
    before = animal_rate(tiny_model, fresh_prompts)
    assert 0.2 < before < 0.6  # a moderate base rate, as tiny.py documents
    result = train(animal_rows, TrainConfig(model=str(tiny_model), out=str(tmp_path / "round1"), learning_rate=5e-4,
                                            batch_size=8, epochs=1))
    after = animal_rate(result.out_dir, fresh_prompts)
    assert after > before + 0.1
