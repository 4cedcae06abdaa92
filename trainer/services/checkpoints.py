"""The checkpoint registry: activation (and so rollback) and streaming a checkpoint as a tar."""
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path

from feedback.models import Project

from . import storage
from .errors import Conflict

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE


def activate(checkpoint, *, user) -> None:
    """Make the checkpoint the one the project's next round generates from and the next run starts
    from. Activating an older checkpoint is the rollback."""
    _files(checkpoint)
    Project.objects.filter(pk=checkpoint.project_id).update(active_checkpoint=checkpoint)
    log.info("%s activated checkpoint %s of project %s", user, checkpoint.pk, checkpoint.project_id)


def checkpoint_summary(checkpoint, *, active_id: int | None) -> dict:
    return {
        "id": checkpoint.pk,
        "project": checkpoint.project_id,
        "parent": checkpoint.parent_id,
        "run": checkpoint.run_id,
        "path": checkpoint.path,
        "metrics": checkpoint.metrics,
        "active": checkpoint.pk == active_id,
        "created_at": checkpoint.created_at,
    }


def archive_name(checkpoint) -> str:
    return f"prospect-project{checkpoint.project_id}-checkpoint{checkpoint.pk}.tar"


def stream_archive(checkpoint) -> Iterator[bytes]:
    """The checkpoint directory as an uncompressed tar, produced file by file and chunk by chunk,
    so a multi-gigabyte model never sits in memory (safetensors barely compress anyway)."""
    return _tar_stream(_files(checkpoint), Path(archive_name(checkpoint)).stem)


def _files(checkpoint) -> Path:
    """The checkpoint's directory on this machine; Conflict (409) when it is gone."""
    root = storage.absolute(checkpoint.path)
    if not root.is_dir():
        raise Conflict(f"Checkpoint {checkpoint.pk} has no files in checkpoint storage ({checkpoint.path}).")
    return root


def _tar_stream(root: Path, prefix: str) -> Iterator[bytes]:
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            continue  # only plain files and folders of the checkpoint itself
        info = tarfile.TarInfo(f"{prefix}/{path.relative_to(root).as_posix()}")
        stat = path.stat()
        info.mtime, info.mode = int(stat.st_mtime), 0o755 if path.is_dir() else 0o644
        if path.is_dir():
            info.type = tarfile.DIRTYPE
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            continue
        info.size = stat.st_size
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        written = 0
        with open(path, "rb") as handle:
            while written < info.size:
                chunk = handle.read(min(CHUNK_BYTES, info.size - written))
                if not chunk:
                    raise OSError(f"{path} shrank while it was being archived")
                written += len(chunk)
                yield chunk
        if info.size % BLOCK:
            yield b"\0" * (BLOCK - info.size % BLOCK)
    yield b"\0" * (2 * BLOCK)  # end-of-archive marker
