"""Secrets that development creates for itself under DATA_DIR, once, and reuses.

Production never calls this: each service refuses to start there without its configured
secret. In development the first process to need a secret writes it; every later process
(and every later start) reads the same file.
"""

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def dev_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The contents of `path`, created with `make()` if missing; the first writer wins.

    The secret goes to a private temp file (mode 0600) that is then hard-linked to its final
    name: `link` fails if another process got there first, and then that process's secret is
    used. No reader ever sees a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(make())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
                log.warning("generated a development secret at %s", path)
        finally:
            os.unlink(tmp)
    return path.read_bytes()
