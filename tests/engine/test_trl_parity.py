"""Same tiny model, rows, batch and a reference that differs from the policy: Prospect vs TRL's KTOTrainer."""
import pytest

from trainer.kto import TrainConfig, train

trl = pytest.importorskip("trl")
KEYS = ("loss", "kl", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected")


def trl_trajectory(tiny_model, reference_model, rows, tmp_path, steps):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = trl.KTOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=8, max_steps=steps,
                         learning_rate=1e-3, logging_steps=1, report_to=[], bf16=False, gradient_checkpointing=False,
                         use_cpu=True, save_strategy="no", precompute_ref_log_probs=True, seed=0, disable_tqdm=True)
    trainer = trl.KTOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model),
                             ref_model=AutoModelForCausalLM.from_pretrained(reference_model), args=args,
                             train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(tiny_model))
    trainer.train()
    return [entry for entry in trainer.state.log_history if "kl" in entry][:steps]


def as_chat(row):
    return {"prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": row["completion"].strip()}], "label": row["label"]}


@pytest.mark.slow
@pytest.mark.parametrize("style", ["plain", "chat"])
def test_first_batch_and_trajectory_match_trl(tiny_model, reference_model, animal_rows, tmp_path, style, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    rows = [{"prompt": r["prompt"], "completion": r["completion"], "label": r["desirable"]} for r in animal_rows[:24]]
    if style == "chat":
        rows = [as_chat(row) for row in rows]
    assert {r["label"] for r in rows[:8]} == {True, False}  # the first batch has both halves
    steps = 3
    theirs = trl_trajectory(tiny_model, reference_model, rows, tmp_path, steps)
    ours = train(rows, TrainConfig(model=str(tiny_model), out=str(tmp_path / "ours"), reference=str(reference_model),
                                   batch_size=8, max_steps=steps, learning_rate=1e-3, warmup_ratio=0.0,
                                   shuffle=False, group_by_length=False)).metrics

    assert abs(ours[0]["kl"]) > 1e-2  # the reference really differs: z0 is not clamped to 0
    for key in KEYS:  # the first batch, before any update
        assert ours[0][key] == pytest.approx(theirs[0][key], abs=1e-5), key
    for mine, trls in zip(ours[1:], theirs[1:]):  # after AdamW updates with the same schedule
        assert mine["lr"] == pytest.approx(trls["learning_rate"], rel=1e-9)
        for key in KEYS:
            assert mine[key] == pytest.approx(trls[key], abs=1e-4), key
