"""Saving and reading files safely: atomic writes and .npz reading.

An atomic write goes to a temporary file beside the target and is then
renamed over it (``os.replace``), so a crash or Ctrl-C mid-write never
leaves a truncated file in place: the reader sees the old file or the new.
The temporary is ``<path>.tmp-<pid>``; a process killed mid-write leaves it
behind, and ``stale_temporaries`` finds it.
"""

import os
import zipfile
from pathlib import Path

import numpy as np


TMP_INFIX = ".tmp-"


def write_atomic(path, write):
    """Call ``write(f)`` on a binary file that then replaces ``path`` atomically."""
    path = os.fspath(path)
    tmp = f"{path}{TMP_INFIX}{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def stale_temporaries(path):
    """The temporaries ``<path>.tmp-<pid>`` of write_atomic(path) whose process
    is gone (killed mid-write), as Paths."""
    path = Path(path)
    stale = []
    for tmp in path.parent.glob(path.name + TMP_INFIX + "*"):
        pid = tmp.name[len(path.name) + len(TMP_INFIX):]
        if pid.isdigit() and not _process_exists(int(pid)):
            stale.append(tmp)
    return stale


def _process_exists(pid):
    """True if a process ``pid`` is running (signal 0 tests without sending)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:      # it exists, owned by another user
        return True
    return True


def save_npz_atomic(path, arrays):
    """np.savez(path, **arrays), atomically."""
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_npz(path, what="numpyvae file"):
    """All arrays of an .npz file as a dict (no pickles).

    A truncated, empty or foreign file raises a ValueError naming ``path``
    (numpy would raise BadZipFile, EOFError or TypeError); a missing file
    raises FileNotFoundError.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            return dict(f)
    except (ValueError, EOFError, TypeError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable {what} ({err})") from err
