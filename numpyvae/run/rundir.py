"""A run's output directory (--out): the files a run writes there, and the guard around it.

A run writes exactly RUN_FILES into its directory:

    metrics.json       the settings, the data's checksums, one record per epoch, the final evaluation
    checkpoint.npz     model, optimizer and random state after the last finished epoch
    *.png              the pictures of plots.plot_run (PLOTS; manifold.png only for a 2-d latent space)

and, while it writes metrics.json or checkpoint.npz, a temporary
``<name>.tmp-<pid>`` beside it (files.write_atomic), which a killed process
can leave behind.

The guard, in two calls that a run makes in this order:

    check_out(out, resume, overwrite)   before anything else: no side effects
    prepare_out(out, overwrite)         after every other check, before training

1. --out must be a directory, or a path where one can be made, that the
   run can write to; a problem is found before any training.
2. A new run never replaces a file a run writes that is already in --out
   (whoever wrote it) unless --overwrite says so; then it removes exactly
   RUN_FILES, nothing else.  --resume needs checkpoint.npz.
3. Temporaries of interrupted writes are removed (those of processes still
   running are left alone).
"""

import os
import tempfile
from pathlib import Path

from numpyvae.util.files import stale_temporaries
from numpyvae.run.settings import RunError

CHECKPOINT, METRICS = "checkpoint.npz", "metrics.json"
PLOTS = {"reconstructions": "reconstructions.png", "samples": "samples.png",
         "loss_curves": "loss_curves.png", "latent_scatter": "latent_scatter.png",
         "manifold": "manifold.png"}
RUN_FILES = (METRICS, CHECKPOINT, *PLOTS.values())


def run_files_in(out):
    """The names of RUN_FILES present in the directory ``out``."""
    return [name for name in RUN_FILES if os.path.lexists(Path(out) / name)]


def check_out(out, resume=False, overwrite=False):
    """RunError, naming --out, unless a run may use the directory ``out`` (see rules 1 and 2).

    Changes nothing on disk.  ``out`` need not exist yet: then its nearest
    existing ancestor must be a directory the run may write to.
    """
    out = Path(out)
    if resume and overwrite:
        raise RunError("--resume continues the run in --out and --overwrite replaces it: "
                       "pass one of them")
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a directory")
    existing = out if out.is_dir() else _nearest_existing_ancestor(out)
    if not existing.is_dir():
        raise RunError(f"--out {out} cannot be made: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"--out {out} is not writable: no write permission in {existing}")
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise RunError(f"nothing to resume: {out / CHECKPOINT} does not exist")
        return
    found = run_files_in(out) if out.is_dir() else []
    if found and not overwrite:
        what = ("a run" if CHECKPOINT in found else "files a run writes")
        resume_hint = "continue it with --resume (--epochs may grow), " if CHECKPOINT in found else ""
        raise RunError(f"{out} already holds {what} ({', '.join(found)}): {resume_hint}"
                       "replace them with --overwrite, or choose another --out")


def prepare_out(out, overwrite=False):
    """Make the directory ``out`` and prove it writable; with ``overwrite``
    remove the RUN_FILES in it; remove stale temporaries.  Call check_out first."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"--out {out} cannot be made ({e.strerror or e})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise RunError(f"--out {out} is not writable: no file can be made in it "
                       f"({e.strerror or e})") from None
    if overwrite:
        for name in run_files_in(out):
            (out / name).unlink()
    for name in (CHECKPOINT, METRICS):
        for path in stale_temporaries(out / name):
            path.unlink(missing_ok=True)


def _nearest_existing_ancestor(path):
    return next(parent for parent in Path(os.path.abspath(path)).parents if parent.exists())
