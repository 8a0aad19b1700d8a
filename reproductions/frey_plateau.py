"""Where Figure 2's Frey Face plateau lies, and how it depends on the test split and the
pixel scaling: a measurement in closed form, without training.

The plateau.  Wake-sleep on Frey Face (and every run at its start) sits on a
plateau: the decoder ignores z, q(z|x) is the prior, so the KL term is 0 and the
lower bound per datapoint is the log-density of a Gaussian with one mean m_d and
one variance s_d^2 per pixel,

    L(x) = sum_d log N(x_d; m_d, s_d^2) = -1/2 sum_d [ log(2 pi s_d^2) + (x_d - m_d)^2 / s_d^2 ].

Its best value on the training set is at the pixels' training mean and variance
(m_d = mean_n x_nd, in (0, 1), where the sigmoid reaches; s_d^2 = var_n x_nd),
so the plateau of a split is that fit's mean L over the training set, and its test
bound the same fit's mean L over the test set.  The reproduction's wake-sleep
N_z = 2 run, on the plateau to 10^7 samples, lies on these values to 0.3 nats
(``trained`` in the output), which shows that this is the plateau measured.

Scaling the pixels by c (x / 256 instead of x / 255, c = 255 / 256) moves both
bounds by -D log c = +D log(256 / 255) (the Jacobian), 2.19 nats for D = 560.

    python reproductions/frey_plateau.py --frey-dir DIR --out results/kingma_welling/investigations/frey_plateau.json
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

import numpy as np

try:
    import numpyvae  # noqa: F401  (installed, or run from the source tree below)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paper_values
from numpyvae.data.frey import N_TEST, read_frey, frey_split

SCALES = (255, 256)          # the project's x / 255, Kingma's code's x / 256
RANDOM_SPLITS = 1000         # split seeds 0 .. RANDOM_SPLITS - 1


def plateau_bounds(x_train, x_test):
    """(train, test): the mean lower bound per datapoint of the per-pixel Gaussian fitted
    to x_train (N, D) (its mean and variance), on x_train and on x_test (M, D)."""
    mean, var = x_train.mean(axis=0), x_train.var(axis=0)

    def mean_log_density(x):
        return float(np.mean(np.sum(-0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var),
                                    axis=1)))

    return mean_log_density(x_train), mean_log_density(x_test)


def split_bounds(faces, train_index, test_index, scale):
    x = faces.astype(np.float64) / scale
    return plateau_bounds(x[train_index], x[test_index])


def measure(faces, results=None):
    """The plateau for the project's split (seed 0), contiguous splits, RANDOM_SPLITS
    random ones, and both scalings; the paper's plateau (wake-sleep N_z = 2 at 10^6)
    and, given the reproduction's results, its trained plateau."""
    n = len(faces)
    everything = np.arange(n)
    contiguous = {"first 1600 train, last 365 test": (everything[:-N_TEST], everything[-N_TEST:]),
                  "last 1600 train, first 365 test": (everything[N_TEST:], everything[:N_TEST])}
    out = {"n_images": n, "n_test": N_TEST, "splits": {}}
    for scale in SCALES:
        splits = {"seed 0 (the project's)": frey_split(n), **contiguous}
        for name, (train, test) in splits.items():
            bounds = split_bounds(faces, train, test, scale)
            out["splits"][f"{name}, x/{scale}"] = {"train": bounds[0], "test": bounds[1]}
    random = np.array([split_bounds(faces, *frey_split(n, seed=s), 255)
                       for s in range(RANDOM_SPLITS)])
    paper = paper_values.kw_figure2()[("frey", "wake-sleep", 2)]
    paper_train, paper_test = paper.at("train", 10 ** 6), paper.at("test", 10 ** 6)
    gap = random[:, 1] - random[:, 0]
    out["random_splits"] = {
        "seeds": RANDOM_SPLITS, "scale": 255,
        "train_mean": float(random[:, 0].mean()), "train_std": float(random[:, 0].std()),
        "test_mean": float(random[:, 1].mean()), "test_std": float(random[:, 1].std()),
        "test_min": float(random[:, 1].min()), "test_max": float(random[:, 1].max()),
        "gap_mean": float(gap.mean()), "gap_std": float(gap.std()),
        "seed0_test_rank": int(np.sum(random[:, 1] < random[0, 1])),
        "fraction_within_precision_of_paper": float(np.mean(
            (np.abs(random[:, 0] - paper_train) <= paper_values.READING_PRECISION["frey"])
            & (np.abs(random[:, 1] - paper_test) <= paper_values.READING_PRECISION["frey"]))),
        "fraction_gap_at_least_papers": float(np.mean(gap >= paper_test - paper_train)),
    }
    out["paper_wake_sleep_z2_1e6"] = {"train": paper_train, "test": paper_test}
    if results is not None:
        record = results["runs"]["frey-wake-sleep-z2"]
        out["trained"] = {"run": record["run"], **{k: record["curve"][-1][k]
                                                   for k in ("samples", "train", "test")}}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frey-dir", required=True, metavar="DIR", help="holds frey_rawface.mat")
    p.add_argument("--results", type=Path, default=paper_values.KW_RESULTS,
                   help="the reproduction's results.json (default: the committed one)")
    p.add_argument("--out", type=Path, help="write the measurements here as JSON")
    args = p.parse_args(argv)
    faces = read_frey(Path(args.frey_dir) / "frey_rawface.mat")
    results = json.loads(args.results.read_text()) if args.results.exists() else None
    out = measure(faces, results)
    for name, bounds in out["splits"].items():
        print(f"{name:45s} plateau train {bounds['train']:7.2f}  test {bounds['test']:7.2f}")
    r = out["random_splits"]
    print(f"{r['seeds']} random splits, x/255: train {r['train_mean']:.2f} +- {r['train_std']:.2f}, "
          f"test {r['test_mean']:.2f} +- {r['test_std']:.2f} (min {r['test_min']:.2f}, max "
          f"{r['test_max']:.2f}); test - train {r['gap_mean']:.2f} +- {r['gap_std']:.2f}; "
          f"seed 0's test bound is above {r['seed0_test_rank']} of them")
    paper = out["paper_wake_sleep_z2_1e6"]
    print(f"paper (wake-sleep N_z = 2 at 10^6): train {paper['train']}, test {paper['test']}; "
          f"random splits within +-10 of both: {r['fraction_within_precision_of_paper']:.1%}, "
          f"with a test - train gap at least the paper's: {r['fraction_gap_at_least_papers']:.1%}")
    if "trained" in out:
        t = out["trained"]
        print(f"trained plateau ({t['run']}, {t['samples']:.0e} samples): train "
              f"{t['train']:.2f}, test {t['test']:.2f}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
