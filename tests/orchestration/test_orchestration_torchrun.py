"""PROSPECT_TRAIN_PROCESSES > 1: the engine's command line under torchrun (2 CPU processes, gloo)."""
import pytest

from trainer.services.engine_runner import TorchrunRun

pytestmark = pytest.mark.slow


def rows(count=16):
    return [{"prompt": f"Tell me about the lake {i}.", "completion": "The cat sleeps." if i % 2 else "It rained.",
             "desirable": bool(i % 2)} for i in range(count)]


def config(tiny_model, out, **changes):
    from trainer.kto import TrainConfig

    return TrainConfig(model=tiny_model, out=str(out), batch_size=2, learning_rate=1e-4, device="cpu", **changes)


def test_two_processes_train_and_report_progress(tiny_model, tmp_path):
    events = []
    result = TorchrunRun(rows(), config(tiny_model, tmp_path / "run-1", max_steps=3), 2).run(
        progress=events.append, should_cancel=lambda: False)
    assert (tmp_path / "run-1" / "config.json").exists()
    assert result.summary["world_size"] == 2
    assert [event["step"] for event in events if "step" in event] == [1, 2, 3]
    assert [entry["step"] for entry in result.metrics] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-1"]  # work folder removed


def test_cancel_reaches_every_rank_and_leaves_nothing(tiny_model, tmp_path):
    from trainer.kto import TrainingCancelled

    events = []
    stepped = lambda: any("step" in event for event in events)  # noqa: E731 - cancel after the first step
    with pytest.raises(TrainingCancelled):
        TorchrunRun(rows(), config(tiny_model, tmp_path / "run-2", max_steps=100000), 2).run(
            progress=events.append, should_cancel=stepped)
    assert list(tmp_path.iterdir()) == []
