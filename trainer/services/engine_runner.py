"""Run the KTO engine for one training run: in this worker process, or under torchrun.

One process (the default) calls trainer.kto.train directly; the engine picks CUDA with bf16 when
the worker has a GPU (device "auto"). With settings.PROSPECT_TRAIN_PROCESSES > 1 the engine's
command line runs under torchrun, one process per GPU of this machine; this process then follows
the run through the engine's live metrics file and asks it to stop through its cancel file.
"""
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def run_engine(rows: list[dict], config, *, progress, should_cancel, processes: int = 1):
    from trainer.kto import train

    if processes <= 1:
        return train(rows, config, progress=progress, should_cancel=should_cancel)
    return TorchrunRun(rows, config, processes).run(progress=progress, should_cancel=should_cancel)


class TorchrunRun:
    """`torchrun --nproc_per_node N -m trainer.kto train ...` supervised from this process."""

    def __init__(self, rows: list[dict], config, processes: int):
        self.rows, self.config, self.processes = rows, config, processes
        out = Path(config.out)
        # Beside the checkpoint (same storage), hidden, and removed with the run's other leftovers.
        self.work = out.parent / f".{out.name}.work"

    def command(self) -> list[str]:
        from trainer.kto import TrainConfig

        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={self.processes}", "-m", "trainer.kto", "train",
                "--data", str(self.work / "rows.jsonl")]
        values = dict(self.config.__dict__, live_metrics=str(self.work / "live.jsonl"),
                      cancel_file=str(self.work / "cancel"))
        defaults = TrainConfig(model="", out="")
        for field in fields(TrainConfig):
            value = values[field.name]
            if field.name not in ("model", "out") and value == getattr(defaults, field.name):
                continue  # the CLI's defaults are the dataclass's
            argv += cli_option(field.name, value)
        return argv

    def run(self, *, progress, should_cancel):
        from trainer.kto import TrainingCancelled

        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        try:
            with open(self.work / "rows.jsonl", "w", encoding="utf-8") as handle:
                for row in self.rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            with open(self.work / "torchrun.log", "wb") as output:
                process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT,
                                           env=_child_environment(), preexec_fn=_die_with_parent,
                                           start_new_session=True)
                code = self._follow(process, progress, should_cancel)
            if (self.work / "cancel").exists():
                raise TrainingCancelled("cancelled")
            if code != 0:
                tail = (self.work / "torchrun.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"torchrun exited with status {code}:\n{tail}")
            return _result(Path(self.config.out), self.metrics)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _follow(self, process, progress, should_cancel) -> int:
        self.metrics, offset = [], 0
        live = self.work / "live.jsonl"
        while True:
            code = process.poll()
            offset = self._read_events(live, offset, progress)
            if code is not None:
                return code
            if should_cancel() and not (self.work / "cancel").exists():
                (self.work / "cancel").touch()  # every rank checks it each step
            time.sleep(POLL_SECONDS)

    def _read_events(self, live: Path, offset: int, progress) -> int:
        if not live.exists():
            return offset
        with open(live, encoding="utf-8") as handle:
            handle.seek(offset)
            while True:
                line = handle.readline()
                if not line.endswith("\n"):
                    break  # a line still being written: read it next time
                offset = handle.tell()
                event = json.loads(line)
                if "step" in event:
                    self.metrics.append({"step": event["step"], **event.get("metrics", {})})
                progress(event)
        return offset


def cli_option(name: str, value) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag] if value else [f"--no-{name.replace('_', '-')}"]
    if value is None:
        return []
    return [flag, str(value)]


def _result(out: Path, metrics: list[dict]):
    from trainer.kto.engine import TrainResult

    summary_file = out / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return TrainResult(out_dir=out, metrics=metrics, summary=summary)


def _child_environment() -> dict:
    """This environment, with the checkout importable even when Prospect is not pip-installed."""
    from django.conf import settings

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.BASE_DIR), env.get("PYTHONPATH")]))
    return env


def _die_with_parent() -> None:
    """Linux: torchrun gets SIGTERM if this worker dies, and passes it on to its ranks."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
