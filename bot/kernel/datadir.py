"""DATA_DIR and what lives in it are the operator's alone: folders 0700, files 0600.

DATA_DIR (`.sealion` by default) holds the conversation log of `dev` (SQLite, with its -wal and
-shm), the embedded Redis's append-only file and password, generated secrets (the admin session
key) and celery beat's schedule: message text, personal data and keys. The rules live here:

- `private_dir(path)`: the folder created 0700; an existing one of ours that others may enter
  (a DATA_DIR an older version made 0755) is narrowed to 0700, which also covers whatever an
  older version left inside it with wider modes.
- `create_private(path)` / `write_private(path, text)`: a file that is 0600 from its first byte
  (never created wide, then narrowed).
- `stored_secret(path)`: a secret generated once and kept in a 0600 file (the admin session
  key, the embedded Redis's password, a generated webhook secret).
- `claim_data_dir(path)`: for the commands that keep their state there (`dev`, `chat`): the
  folder made private, and this process's umask narrowed by `PRIVATE_UMASK`, so that what the
  process and its children create there (redis-server's AOF, beat's schedule, a worker's log)
  is private as well, whatever the shell's umask was.

Each writer also sets its own modes explicitly (the SQLite file in `storage.log.engine`, the
redis-server process in `bot.cli.embedded_redis`, secrets here), so a library use outside the CLI
(the tests, a script) gets the same modes.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

#: Bits no one but the owner gets in DATA_DIR.
PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """`path` as a folder only its owner can enter: created 0700 (parents as usual), or, when
    it exists and belongs to this user, narrowed to at most 0700. A folder of another user is
    left alone (chmod would fail; its owner decides)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    info = folder.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & PRIVATE_UMASK:
        folder.chmod(stat.S_IMODE(info.st_mode) & ~PRIVATE_UMASK)
    return folder


def create_private(path: str | os.PathLike[str]) -> Path:
    """An empty file at `path` created with mode 0600, unless a file is there already (it is
    left as it is). SQLite gives the -wal and -shm files the mode of the database file, so a
    database created this way keeps all three private."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return Path(path)
    os.close(fd)
    return Path(path)


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """`text` into `path`, mode 0600 (an existing file is narrowed before it is written)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(fd, FILE_MODE)
        handle.write(text)


def claim_data_dir(path: str | os.PathLike[str]) -> Path:
    """DATA_DIR for a command that keeps its state there: `private_dir(path)`, and this
    process's umask narrowed by PRIVATE_UMASK (inherited by the processes it starts: the
    embedded redis-server, the Celery worker and its beat). Files the process creates elsewhere
    (a Hugging Face download in `dev`'s worker) are private to the operator too."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
    return private_dir(path)


def stored_secret(path: Path) -> bytes:
    """The secret in `path`, created (32 random bytes, hex, mode 0600, in a private folder) when
    missing. Processes starting together agree: the file appears whole (a hard link) or not at
    all."""
    try:
        value = path.read_text().strip()
        if value:
            return value.encode()
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    try:
        os.link(scratch, path)
    except FileExistsError:
        pass  # another process was first: use its secret
    finally:
        scratch.unlink()
    return path.read_text().strip().encode()
