"""torchrun with 2 gloo CPU processes follows the 1-process trajectory with the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.kto import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_model, reference_model, animal_rows,
                                                                    write_jsonl, tmp_path):
    # Each global batch of 8 is split 4/4; the first rank's half is all desirable, the second's all
    # undesirable, so each rank has an empty half (the case that hangs other tools).
    good = [r for r in animal_rows if r["desirable"]][:8]
    bad = [r for r in animal_rows if not r["desirable"]][:8]
    rows = good[:4] + bad[:4] + good[4:] + bad[4:]
    common = dict(batch_size=4, max_steps=3, learning_rate=1e-3, warmup_ratio=0.0, shuffle=False,
                  group_by_length=False, seed=0, reference=str(reference_model))

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "trainer.kto", "train",
               "--data", str(write_jsonl(rows)), "--model", str(tiny_model), "--out", str(tmp_path / "ddp"), "--quiet"]
    for key, value in common.items():
        flag = "--" + key.replace("_", "-")
        command += [flag] if value is True else [f"--no-{key.replace('_', '-')}"] if value is False else [flag, str(value)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    two = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    one = train(rows, TrainConfig(model=str(tiny_model), out=str(tmp_path / "single"), **dict(common, batch_size=8)))
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert [m["step"] for m in two] == [1, 2, 3]
    assert one.metrics[0]["kl"] > 1e-3  # z0 is live, so its cross-process average is exercised
    for a, b in zip(two, one.metrics):
        for key in ("loss", "kl", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["step"], key)
