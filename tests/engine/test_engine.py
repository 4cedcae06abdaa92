"""train(): checkpoints, metrics, progress, cancellation, validation, determinism, LoRA."""
import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from trainer.kto import TrainConfig, TrainingCancelled, generate, train
from trainer.kto.engine import METRIC_KEYS, lr_factor


def config(tiny_model, out, **overrides):
    options = dict(learning_rate=1e-4, batch_size=4, max_steps=3, seed=0)
    options.update(overrides)
    return TrainConfig(model=str(tiny_model), out=str(out), **options)


def test_training_writes_a_loadable_checkpoint_with_metrics(tiny_model, animal_rows, tmp_path):
    events = []
    result = train(animal_rows[:16], config(tiny_model, tmp_path / "ckpt"), progress=events.append)

    assert result.out_dir == tmp_path / "ckpt"
    model = AutoModelForCausalLM.from_pretrained(result.out_dir)
    original = AutoModelForCausalLM.from_pretrained(tiny_model)
    changed = [not torch.equal(a, b) for a, b in zip(model.parameters(), original.parameters())]
    assert any(changed)
    files = {p.name for p in result.out_dir.iterdir()}
    assert {"model.safetensors", "tokenizer.json", "generation_config.json", "metrics.jsonl", "summary.json"} <= files
    lines = [json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert lines == result.metrics
    for line in lines:
        assert set(METRIC_KEYS) <= set(line)
        assert line["tokens_per_s"] > 0
    step_events = [e for e in events if "step" in e]
    assert [(e["step"], e["total_steps"]) for e in step_events] == [(1, 3), (2, 3), (3, 3)]
    assert step_events[-1]["metrics"]["loss"] == lines[-1]["loss"]
    assert any(e.get("phase") == "reference" for e in events)
    assert result.summary["steps"] == 3 and result.summary["examples"] == 16
    assert not list(tmp_path.glob(".ckpt.partial-*"))


def test_same_seed_same_trajectory(tiny_model, animal_rows, tmp_path):
    first = train(animal_rows[:16], config(tiny_model, tmp_path / "a"))
    second = train(animal_rows[:16], config(tiny_model, tmp_path / "b"))
    drop_speed = lambda metrics: [{k: v for k, v in m.items() if k not in ("tokens_per_s", "step_seconds")}  # noqa: E731
                                  for m in metrics]
    assert drop_speed(first.metrics) == drop_speed(second.metrics)


def test_a_different_reference_changes_rewards_from_the_first_step(tiny_model, reference_model, animal_rows, tmp_path):
    own = train(animal_rows[:8], config(tiny_model, tmp_path / "own", max_steps=1))
    other = train(animal_rows[:8], config(tiny_model, tmp_path / "other", max_steps=1, reference=str(reference_model)))
    assert own.metrics[0]["rewards/chosen"] == pytest.approx(0, abs=1e-5)
    assert abs(other.metrics[0]["rewards/chosen"]) > 1e-3
    assert other.summary["reference"] == str(reference_model)


def test_cancel_stops_within_a_step_and_leaves_nothing(tiny_model, animal_rows, tmp_path):
    steps = []

    def progress(event):
        if "step" in event:
            steps.append(event["step"])

    with pytest.raises(TrainingCancelled):
        train(animal_rows[:16], config(tiny_model, tmp_path / "gone", max_steps=50), progress=progress,
              should_cancel=lambda: len(steps) >= 2)
    assert steps == [1, 2]
    assert list(tmp_path.iterdir()) == []


def test_cancel_file_cancels_too(tiny_model, animal_rows, tmp_path):
    flag = tmp_path / "cancel"
    flag.touch()
    with pytest.raises(TrainingCancelled):
        train(animal_rows[:8], config(tiny_model, tmp_path / "gone", cancel_file=str(flag)))
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("overrides,message", [
    ({"batch_size": 1}, "batch_size must be at least 2"),
    ({"scheduler": "step"}, "scheduler"),
    ({"max_prompt_length": 600}, "max_prompt_length"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"beta": -1}, "beta"),
    ({"merge_lora": True}, "merge_lora"),
])
def test_bad_config_is_refused_before_any_work(tiny_model, animal_rows, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        train(animal_rows[:8], config(tiny_model, tmp_path / "x", **overrides))
    assert list(tmp_path.iterdir()) == []


def test_no_rows_or_one_row_is_refused(tiny_model, animal_rows, tmp_path):
    with pytest.raises(ValueError, match="at least 2 rows"):
        train([], config(tiny_model, tmp_path / "x"))
    with pytest.raises(ValueError, match="at least 2 rows"):
        train(animal_rows[:1], config(tiny_model, tmp_path / "x"))


def test_existing_out_is_never_overwritten(tiny_model, animal_rows, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        train(animal_rows[:8], config(tiny_model, tmp_path / "taken"))


def test_single_label_data_trains_with_finite_loss(tiny_model, animal_rows, tmp_path):
    only_bad = [dict(row, desirable=False) for row in animal_rows[:8]]
    result = train(only_bad, config(tiny_model, tmp_path / "bad", max_steps=2))
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in result.metrics)
    assert result.metrics[0]["rewards/chosen"] is None and result.metrics[0]["rewards/margins"] is None


def test_auto_weights_land_in_the_papers_range(tiny_model, animal_rows, tmp_path):
    rows = [dict(row, desirable=i < 3) for i, row in enumerate(animal_rows[:12])]  # 3 desirable, 9 undesirable
    result = train(rows, config(tiny_model, tmp_path / "w", max_steps=1, auto_weights=True))
    ratio = result.summary["desirable_weight"] * 3 / (result.summary["undesirable_weight"] * 9)
    assert 1 <= ratio <= 4 / 3 + 1e-9


def test_schedules_warm_up_then_decay_without_a_zero_step():
    linear = [lr_factor(s, 10, 0.2, "linear") for s in range(1, 11)]
    cosine = [lr_factor(s, 10, 0.2, "cosine") for s in range(1, 11)]
    assert linear[:2] == [0.5, 1.0] and cosine[:2] == [0.5, 1.0]
    for factors in (linear, cosine):
        assert all(a >= b for a, b in zip(factors[1:], factors[2:]))  # non-increasing after warm-up
        assert factors[2] == 1.0 and factors[-1] < factors[3]
        assert all(0 < f <= 1 for f in factors)  # no step is wasted at a learning rate of 0


def test_lora_saves_an_adapter_and_uses_the_base_as_reference(tiny_model, animal_rows, tmp_path):
    pytest.importorskip("peft")
    result = train(animal_rows[:8], config(tiny_model, tmp_path / "lora", lora=True, lora_r=4, max_steps=2,
                                           learning_rate=1e-3))
    assert (result.out_dir / "adapter_config.json").exists()
    assert not (result.out_dir / "model.safetensors").exists()
    # Adapters start at zero, so the first step's policy is the reference: rewards ~0, like full training.
    assert result.metrics[0]["rewards/chosen"] == pytest.approx(0, abs=1e-5)
    assert result.metrics[1]["rewards/chosen"] != pytest.approx(0, abs=1e-6)
    loaded = AutoModelForCausalLM.from_pretrained(result.out_dir)  # transformers loads adapters via peft
    assert loaded is not None
    [[sample]] = generate(result.out_dir, ["Tell me about the lake."], max_new_tokens=6)
    assert isinstance(sample, str)

    merged = train(animal_rows[:8], config(tiny_model, tmp_path / "merged", lora=True, lora_r=4, max_steps=2,
                                           learning_rate=1e-3, merge_lora=True))
    assert (merged.out_dir / "model.safetensors").exists()
    assert not (merged.out_dir / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(merged.out_dir)
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_gradient_checkpointing_does_not_change_the_trajectory(tiny_model, animal_rows, tmp_path):
    plain = train(animal_rows[:8], config(tiny_model, tmp_path / "plain", learning_rate=1e-3))
    checkpointed = train(animal_rows[:8], config(tiny_model, tmp_path / "gc", learning_rate=1e-3,
                                                 gradient_checkpointing=True))
    for a, b in zip(plain.metrics, checkpointed.metrics):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)


def test_gradient_accumulation_makes_one_step_of_several_batches(tiny_model, animal_rows, tmp_path):
    result = train(animal_rows[:20], config(tiny_model, tmp_path / "ga", max_steps=None, epochs=1, grad_accum=2))
    assert result.summary["batches_per_epoch"] == 5
    assert [m["step"] for m in result.metrics] == [1, 2, 3]  # 2 + 2 + 1 batches


def test_asking_for_cuda_without_it_is_a_clear_error(tiny_model, animal_rows, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(animal_rows[:8], config(tiny_model, tmp_path / "x", device="cuda"))
