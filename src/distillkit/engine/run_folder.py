"""A run folder belongs to one run: `claim` checks `--out` and marks it with ``run.json`` before any work.

The marker records the job (``train``, ``compress``, ``incremental``), a hash of the run's config and the config
itself (as `dump_config` writes it; ``tensorboard`` is left out of the hash and of comparisons, as when a run
resumes). Claiming a folder:

- absent or empty (or holding only the marker of a run that failed before writing anything): the folder is
  created and marked;
- marked by another job, or by the same job with another config: refused (``--overwrite`` replaces that run);
- marked by the same job with the same config: refused unless ``--resume`` (continue it) or ``--overwrite``
  (start it again); ``--resume`` with another config is refused naming the differing keys;
- not empty and unmarked (foreign files): refused, with ``--overwrite`` too — distillkit never deletes what it
  did not write. With ``--resume``, a folder a job recognises as its own run from before markers existed
  (`legacy`) is marked and continued.

``--overwrite`` deletes everything inside the folder (never the folder itself, never through a symlink) and
marks it afresh. `--out` must be a writable folder (or creatable): checked with `os.access` and a real write
probe. Every refusal is a one-line `ConfigError` naming the path and what to do.

A folder is held by one live process at a time: while a job runs, rank 0 keeps ``.running`` in it (its process
id and host), and a second claim of the folder (a ``--resume`` or ``--overwrite`` beside it) is refused naming
that process. The file of a process that is gone (killed, crashed) on this host is taken over; the job removes it
when it ends.

Under torchrun every process checks (reading only), then rank 0 alone writes, between barriers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from distillkit.config import Section, _diff_keys, check_resumable, dump_config
from distillkit.engine.distributed import barrier, is_main
from distillkit.errors import ConfigError

MARKER = "run.json"
LOCK = ".running"
_TMP_PREFIX, _TMP_SUFFIX = f".{MARKER}.", ".tmp"  # the marker's temporary files (and the write probe)

Claimed = Literal["new", "resume", "overwrite", "finished"]


def _comparable(cfg: Section | dict) -> dict:
    tree = dump_config(cfg) if isinstance(cfg, Section) else dict(cfg)
    tree.pop("tensorboard", None)  # logging on or off does not change a run
    return tree


def config_hash(cfg: Section | dict) -> str:
    """SHA-256 of the config as compared on resume (canonical JSON)."""
    text = json.dumps(_comparable(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def out_path(text: str | Path, flag: str = "--out") -> Path:
    """`text` as a path; a `ConfigError` for the empty string (which `Path` would read as the current folder)."""
    if str(text) == "" or not str(text).strip():
        raise ConfigError(f"{flag}: empty path; give an output folder, e.g. {flag} runs/name")
    return Path(text)


def _ours(name: str) -> bool:
    return name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)


def _entries(out: Path) -> list[Path]:
    """What `out` holds, leaving out marker temporaries a killed run may have left."""
    return [p for p in out.iterdir() if not _ours(p.name)]


def check_writable_folder(out: Path, flag: str = "--out") -> None:
    """A `ConfigError` when `out` is a file, or an existing folder this process cannot write (reading only)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file, not a folder; give a folder to write into")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {out}: folder is not writable; give a writable folder")
    if not out.exists():
        parent = next((p for p in out.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ConfigError(f"{flag} {out}: cannot create the folder ({parent} is a file)")
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {out}: cannot create the folder ({parent} is not writable)")


def make_writable_folder(out: Path, flag: str = "--out") -> None:
    """Create `out` if needed and prove it writable by creating and removing a file in it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{flag} {out}: folder is not writable ({exc.strerror or exc.__class__.__name__}); give a writable folder"
        ) from None


def read_marker(out: Path) -> dict | None:
    """The marker of `out` (None when there is none); a `ConfigError` when it is not one distillkit wrote."""
    path = out / MARKER
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"--out {out}: {MARKER} is not a distillkit run marker ({exc.__class__.__name__}); choose another --out"
        ) from None
    if not (
        isinstance(data, dict) and isinstance(data.get("job"), str) and isinstance(data.get("config"), dict)
    ):
        raise ConfigError(f"--out {out}: {MARKER} is not a distillkit run marker; choose another --out")
    return data


def _write_marker(out: Path, job: str, cfg: Section) -> None:
    data = {"job": job, "config_hash": config_hash(cfg), "config": dump_config(cfg)}
    data["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out / MARKER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it and a rename: a crash leaves the old file or
    the new one, never part of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def empty_folder(out: Path, keep: tuple[str, ...] = ()) -> None:
    """Delete everything inside `out` but the names in `keep`: files and symlinks are unlinked (a link's target
    is never touched), folders removed with their contents; `out` itself stays."""
    for entry in out.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _decide(
    out: Path,
    job: str,
    cfg: Section,
    resume: bool,
    overwrite: bool,
    legacy: Callable[[Path], bool] | None,
) -> Claimed:
    """What claiming `out` means (reading only); a `ConfigError` when it is refused."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: pass one of them")
    check_writable_folder(out)
    if not out.is_dir():
        return "new"
    if not [p for p in _entries(out) if p.name not in (MARKER, LOCK)]:
        read_marker(out)  # a run.json distillkit did not write is not replaced
        return "new"  # nothing, or only the marker of a run that stopped before writing anything
    marker = read_marker(out)
    if marker is None:
        if resume and legacy is not None and legacy(out):
            return "resume"  # a run of this job from before run markers; the job compares its config
        raise ConfigError(
            f"--out {out}: folder is not empty and holds no {MARKER} (not a distillkit run folder); choose a new "
            "or empty folder (--overwrite only replaces distillkit runs)"
        )
    if overwrite:
        return "overwrite"
    if marker["job"] != job:
        raise ConfigError(
            f"--out {out}: holds a {marker['job']} run ({MARKER}), not a {job} run; choose another --out, or pass "
            "--overwrite to delete it and start afresh"
        )
    same = marker.get("config_hash") == config_hash(cfg)
    if resume:
        if not same:
            check_resumable(marker["config"], cfg, out)  # names the keys that differ
        return "resume"
    if same:
        raise ConfigError(
            f"--out {out}: already holds this {job} run (same config); pass --resume to continue it, --overwrite "
            "to start it again, or choose another --out"
        )
    differ = ", ".join(_diff_keys(_comparable(marker["config"]), _comparable(cfg))) or "?"
    raise ConfigError(
        f"--out {out}: holds a {job} run with a different config (differs at: {differ}); choose another --out, "
        "or pass --overwrite to replace it"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def holder(out: Path) -> dict | None:
    """The process holding `out` (its ``.running``: pid, host, since), None when no live process does: no file, an
    unreadable one (torn by a kill), or that of a process on this host that is gone. A process on another host
    cannot be checked and counts as live."""
    try:
        data = json.loads((out / LOCK).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    if data.get("host") == socket.gethostname() and not _alive(data["pid"]):
        return None
    return data


def _other(data: dict | None) -> bool:
    """Whether a holder is another process than this one (this one may claim again what it holds)."""
    return data is not None and (data["pid"] != os.getpid() or data.get("host") != socket.gethostname())


def _in_use(out: Path, data: dict) -> ConfigError:
    where = f"process {data['pid']} on {data.get('host', '?')}, since {data.get('since', '?')}"
    return ConfigError(
        f"--out {out}: in use by another run ({where}); wait for it to end or stop it (if it is gone, delete "
        f"{out / LOCK})"
    )


def _hold(out: Path) -> None:
    """Create `out`/.running for this process (exclusively; a stale one is replaced)."""
    data = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(2):
        try:
            fd = os.open(out / LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _other(live := holder(out)):
                raise _in_use(out, live) from None
            (out / LOCK).unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        return
    raise _in_use(out, holder(out) or {"pid": "?"})


def release(out: Path) -> None:
    """Remove `out`/.running if this process holds it (at the end of a job, however it ends)."""
    data = holder(Path(out))
    if data is not None and not _other(data):
        (Path(out) / LOCK).unlink(missing_ok=True)


def claim(
    out: Path,
    job: str,
    cfg: Section,
    *,
    resume: bool = False,
    overwrite: bool = False,
    legacy: Callable[[Path], bool] | None = None,
    finished: str | None = None,
) -> Claimed:
    """Check that `out` may hold this run of `job` (module docstring), then mark it; before any work.

    Returns ``"new"``, ``"resume"`` (the folder holds this run; the job goes on with it) or ``"overwrite"`` (the
    folder was emptied). `finished` names the file a finished run holds: resuming returns ``"finished"`` when it
    is there, and nothing is written. Otherwise rank 0 now holds the folder (``.running``) until `release`.
    """
    decision = _decide(Path(out), job, cfg, resume, overwrite, legacy)  # every process: reading only
    if decision == "resume" and finished is not None:
        decision = "finished" if (out / finished).is_file() else "resume"
    if decision != "finished" and Path(out).is_dir() and _other(live := holder(Path(out))):
        raise _in_use(Path(out), live)
    barrier()
    if is_main():
        make_writable_folder(out)
        if decision == "overwrite":
            empty_folder(out, keep=(MARKER,))
        if decision != "finished":
            _hold(Path(out))
            _write_marker(out, job, cfg)
    barrier()
    return decision


def require_empty_folder(out: Path, what: str) -> None:
    """For tools that write a folder in one go (`data synth`): `out` must be absent or empty, and writable."""
    check_writable_folder(out)
    if out.is_dir() and _entries(out):
        raise ConfigError(
            f"--out {out}: folder is not empty; {what} writes into a new or empty folder (choose another --out, "
            "or delete this one first)"
        )
    make_writable_folder(out)
