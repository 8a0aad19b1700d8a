"""The IWAE step of an earlier commit against the working tree's, in one process.

    python benchmarks/compare_commits.py 469347f --data-dir ../shared/data/mnist

Machines here are noisy: the same step timed in two processes a minute apart
can differ by 30% or more.  This script takes the library of an earlier
commit (``git archive`` into a temporary folder, the package renamed
``numpyvae_then`` so that both import side by side), builds the same model
and TrainingStep with each (benchmarks/iwae_step.py's settings and seeds), and
times the two steps and the matrix products alternately in the same rounds:
the ratio then/now is what the change did, whatever the machine did meanwhile.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import alternate, iwae_step_function, load_data  # noqa: E402
from iwae_step import SETTINGS, paper_model  # noqa: E402
from matmul_floor import training_step_products  # noqa: E402

import numpy as np  # noqa: E402


def import_commit(commit, folder):
    """The package ``numpyvae`` of ``commit``, imported as ``numpyvae_then``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "numpyvae"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    package = Path(folder) / "numpyvae_then"
    (Path(folder) / "numpyvae").rename(package)
    for path in package.rglob("*.py"):
        path.write_text(re.sub(r"\bnumpyvae\b", "numpyvae_then", path.read_text()))
    sys.path.insert(0, folder)
    import numpyvae_then
    return numpyvae_then


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("commit", help="the earlier commit (any git revision)")
    p.add_argument("--data-dir", help="MNIST IDX files (else random images)")
    p.add_argument("--repeats", type=int, default=500, help="steps timed per setting")
    args = p.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared file's known md5 note
        x_train = load_data(args.data_dir).x_train
    now = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        then = import_commit(args.commit, folder)
        print(f"IWAE step then ({args.commit}) and now ({now}), one process, alternating; "
              f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; "
              f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats} steps in 5 rounds, ms")
        print(f"   {'model':10s} {'batch':>5s} {'k':>3s} {'then':>7s} {'now':>7s} {'products':>9s} "
              f"{'then/mm':>8s} {'now/mm':>8s} {'then/now':>9s}")
        for layers, batch, k in SETTINGS:
            fns = [iwae_step_function(paper_model(layers, then), x_train, batch, k,
                                      np.random.default_rng(0), library=then),
                   iwae_step_function(paper_model(layers), x_train, batch, k,
                                      np.random.default_rng(0)),
                   training_step_products(paper_model(layers), batch, np.random.default_rng(0),
                                          samples=k)]
            for _ in range(20):
                for fn in fns:
                    fn()
            then_ms, now_ms, mm_ms = alternate(fns, args.repeats)
            print(f"   {layers:10s} {batch:5d} {k:3d} {then_ms:7.2f} {now_ms:7.2f} {mm_ms:9.2f} "
                  f"{then_ms / mm_ms:8.2f} {now_ms / mm_ms:8.2f} {then_ms / now_ms:9.2f}", flush=True)


if __name__ == "__main__":
    main()
