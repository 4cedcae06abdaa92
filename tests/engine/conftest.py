"""Fixtures for the engine tests: the tiny model (built once per session), a reference model that
differs from it, and labelled rows sampled from it with the animal rule."""
import json

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(shared_tiny_model):
    return shared_tiny_model


@pytest.fixture(scope="session")
def reference_model(tiny_model, tmp_path_factory):
    """The tiny model with every weight nudged by seeded noise: a reference that differs from the policy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("reference") / "model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def animal_rows(tiny_model):
    """64 samples of the tiny model, labelled desirable iff they mention an animal."""
    from trainer.kto import generate
    from trainer.kto.tiny import mentions_animal, sample_prompts

    prompts = sample_prompts(64, seed=3)
    samples = generate(tiny_model, prompts, n=1, seed=2)
    return [{"prompt": p, "completion": s[0], "desirable": mentions_animal(s[0])} for p, s in zip(prompts, samples)]


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="rows.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    return write
