"""Writing files atomically: readers see the old file or the new one, never half of one. Stdlib only."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, content: bytes | str | Callable[[BinaryIO], None]) -> Path:
    """Write `content` (bytes, UTF-8 text, or a function given the open binary file) to `path` atomically.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file is renamed
    over `path`; on any error the temporary file is removed and an existing `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file (mkstemp forces 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave a stray temporary file
        tmp.unlink(missing_ok=True)
        raise
    return path


EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool stopped by a closed pipe


def drop_stdout() -> int:
    """After a BrokenPipeError on stdout (`... | head -1`): send the rest of the output nowhere, so the flush at
    exit cannot fail again, and return the exit status a closed pipe gives. The standard recipe."""
    import contextlib
    import sys
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_CLOSED_PIPE
