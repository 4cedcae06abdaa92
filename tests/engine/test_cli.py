"""python -m trainer.kto: train from JSONL (TRL's label column too), line-numbered errors, tiny, generate."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from trainer.kto.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_train_command_saves_a_loadable_checkpoint_with_a_progress_bar(tiny_model, animal_rows, write_jsonl, tmp_path):
    rows = [{"prompt": r["prompt"], "completion": r["completion"], "label": r["desirable"]} for r in animal_rows[:8]]
    out = tmp_path / "ckpt"
    done = subprocess.run(
        [sys.executable, "-m", "trainer.kto", "train", "--data", str(write_jsonl(rows)), "--model", str(tiny_model),
         "--out", str(out), "--batch-size", "4", "--max-steps", "2", "--learning-rate", "1e-4", "--no-shuffle"],
        cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "KTO" in done.stderr and "2/2" in done.stderr  # the tqdm bar
    assert json.loads(done.stdout.strip().splitlines()[-1])["steps"] == 2
    AutoModelForCausalLM.from_pretrained(out)
    assert json.loads((out / "training_config.json").read_text())["shuffle"] is False


@pytest.mark.parametrize("lines,expected", [
    (['{"prompt": "a", "completion": "b", "label": true}', '{"prompt": "a", "completion": "b", "label": false}',
      '{"prompt": "a", "completion": "b" "label": true}'], ":3: invalid JSON"),
    (['{"prompt": "a", "completion": "b", "label": true}', '{"prompt": "a", "label": true}'], ":2: missing completion"),
    (['{"prompt": "a", "completion": "b", "desirable": "yes"}'], ":1: desirable/label must be true or false"),
    ([], "no rows"),
])
def test_bad_jsonl_exits_2_naming_the_line(tiny_model, tmp_path, capsys, lines, expected):
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(lines) + "\n")
    code = main(["train", "--data", str(data), "--model", str(tiny_model), "--out", str(tmp_path / "out")])
    assert code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_option_exits_2_with_the_reason(tiny_model, animal_rows, write_jsonl, tmp_path, capsys):
    code = main(["train", "--data", str(write_jsonl(animal_rows[:4])), "--model", str(tiny_model),
                 "--out", str(tmp_path / "out"), "--batch-size", "1"])
    assert code == 2
    assert "batch_size must be at least 2" in capsys.readouterr().err


def test_tiny_command_is_idempotent(tiny_model, capsys):
    assert main(["tiny", "--out", str(tiny_model)]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_model)


def test_generate_command_prints_one_json_line_per_prompt(tiny_model, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Tell me about the lake.\n\nWrite a short story.\n")
    assert main(["generate", "--model", str(tiny_model), "--prompts", str(prompts), "-n", "2",
                 "--max-new-tokens", "8"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["prompt"] for line in lines] == ["Tell me about the lake.", "Write a short story."]
    assert all(len(line["completions"]) == 2 for line in lines)
