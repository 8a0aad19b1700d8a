"""The papers' own values (results/paper_values/) beside the reproductions' numbers.

    kw_figure2()             Kingma & Welling (2014), Figure 2, as read from the PDF's vector
                             paths: {(dataset, method, N_z): PaperCurve}, in the reproduction's
                             names ('mnist' / 'frey', 'aevb' / 'wake-sleep')
    iwae_table1()            Burda et al. (2016), Table 1: {(layers, model, k): test -log p(x)}
    kw_comparison_table()    a README table: the reproduction's bound at a number of training
                             samples, the paper's, and the difference, every run of Figure 2
    iwae_paper_table()       the README's rows of the IWAE paper's values
    experiments_table()      investigation runs beside the committed run and the paper

    python reproductions/paper_values.py kw 1e6      # the README's tables, from the
    python reproductions/paper_values.py kw 1e7      # committed results and paper values
    python reproductions/paper_values.py iwae
    python reproductions/paper_values.py experiments --experiments DIR/results.json ...

Each table is printed under an HTML comment naming it (``<!-- paper_values kw 1e6 -->``),
by which tests/test_paper_values.py finds it in the README and checks it against the
committed files, so the README cannot drift from them.  A difference larger than
the paper's reading precision (READING_PRECISION: +-1 nat MNIST, +-10 Frey Face) is bold.
"""

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read when numpy loads: docs/benchmarks.md

ROOT = Path(__file__).resolve().parents[1]
PAPER_DIR = ROOT / "results" / "paper_values"
KW_FIGURE2, IWAE_TABLE1 = "kw2014_fig2.json", "iwae2016_table1.json"
KW_RESULTS = ROOT / "results" / "kingma_welling" / "results.json"

DATASET_NAMES = {"MNIST": "mnist", "Frey": "frey"}        # the JSON's names -> the protocol's
METHOD_NAMES = {"AEVB": "aevb", "WS": "wake-sleep"}
SPLITS = ("train", "test")
READING_PRECISION = {"mnist": 1.0, "frey": 10.0}          # nats, results/paper_values/README.md
KW_LATENT_DIMS = {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}   # Figure 2's panels
TITLES = {"mnist": "MNIST", "frey": "Frey Face"}


@dataclass(frozen=True)
class PaperCurve:
    """One method's curves in one panel of Figure 2, at the points read from the PDF.

    samples : the numbers of training samples of the points, increasing (10^6, 10^7,
        10^8 and the curve's end, unless the end is at 10^8)
    train, test : the lower bound per datapoint at those points (nats)
    """

    samples: tuple
    train: tuple
    test: tuple

    def at(self, split, samples):
        """The lower bound of ``split`` at ``samples`` training samples (one of the points)."""
        if samples not in self.samples:
            raise KeyError(f"the paper's values are at {self.samples} samples, not {samples:g}")
        return getattr(self, split)[self.samples.index(samples)]


def read_json(name):
    return json.loads((PAPER_DIR / name).read_text())


def kw_figure2():
    """{(dataset, method, N_z): PaperCurve} of every panel of Figure 2 (36 rows of the
    JSON, a train and a test row for each of the 18 curves)."""
    points = {}
    for row in read_json(KW_FIGURE2)["rows"]:
        key = (DATASET_NAMES[row["dataset"]], METHOD_NAMES[row["method"]], row["n_z"])
        values = {10 ** int(k[2:]) * int(k[0]): v for k, v in row["lower_bound_at"].items()}
        end = round(10 ** row["end_log10_samples"])
        if values.setdefault(end, row["end"]) != row["end"]:     # Frey Face ends at 10^8 itself
            raise ValueError(f"{KW_FIGURE2}: {key} {row['split']}: the end and the value at "
                             f"{end:g} samples differ")
        points.setdefault(key, {})[row["split"]] = values
    curves = {}
    for key, splits in points.items():
        samples = tuple(sorted(splits["train"]))
        if samples != tuple(sorted(splits["test"])):
            raise ValueError(f"{KW_FIGURE2}: {key} has train and test at different samples")
        curves[key] = PaperCurve(samples, *(tuple(splits[s][n] for n in samples) for s in SPLITS))
    return curves


def iwae_table1():
    """{(layers, model, k): test -log p(x)}, e.g. (1, 'IWAE', 5) -> 85.54."""
    nll = read_json(IWAE_TABLE1)["nll"]
    return {(int(layers.split()[0]), model, int(k[2:])): value
            for layers, models in nll.items() for model, ks in models.items()
            for k, value in ks.items()}


# ------------------------------------------------------- the README tables --

def bound_at(record, split, samples):
    """A run's lower bound of ``split`` at ``samples`` training samples (a curve point)."""
    for point in record["curve"]:
        if point["samples"] == samples:
            return point[split]
    raise KeyError(f"{record['run']} has no evaluation at {samples:g} samples")


def kw_comparison_rows(results, samples, paper=None):
    """[(dataset, N_z, [(ours, paper's, difference) for AEVB train, AEVB test, wake-sleep
    train, wake-sleep test])] for every panel of Figure 2 whose two runs reach ``samples``."""
    paper = kw_figure2() if paper is None else paper
    rows = []
    for dataset, latent_dims in KW_LATENT_DIMS.items():
        for latent_dim in latent_dims:
            cells = []
            for method in METHOD_NAMES.values():
                record = results["runs"].get(f"{dataset}-{method}-z{latent_dim}")
                if record is None or record["samples"] < samples:
                    break
                for split in SPLITS:
                    ours = bound_at(record, split, samples)
                    theirs = paper[(dataset, method, latent_dim)].at(split, samples)
                    cells.append((ours, theirs, ours - theirs))
            if len(cells) == 2 * len(SPLITS):
                rows.append((dataset, latent_dim, cells))
    return rows


def marker(name):
    return f"<!-- paper_values {name} -->"


def kw_comparison_table(results, samples, paper=None):
    """The README's table at ``samples``: per panel, each bound here, the paper's, the
    difference (here - paper; bold beyond the reading precision)."""
    head = ["data set", "N_z"]
    for method in ("AEVB", "WS"):
        for split in SPLITS:
            head += [f"{method} {split}", "paper", "diff"]
    lines = [marker(f"kw {samples:.0e}".replace("e+0", "e")), "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for dataset, latent_dim, cells in kw_comparison_rows(results, samples, paper):
        row = [TITLES[dataset], str(latent_dim)]
        for ours, theirs, diff in cells:
            text = f"{diff:+.1f}"
            beyond = abs(round(diff, 1)) > READING_PRECISION[dataset]
            row += [f"{ours:.2f}", f"{theirs:.1f}", f"**{text}**" if beyond else text]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def iwae_paper_table(table=None):
    """The README's rows of Burda et al.'s Table 1, one stochastic layer and two."""
    table = iwae_table1() if table is None else table
    lines = [marker("iwae"), "| paper (3,280 epochs), test -log p(x) | k = 1 | k = 5 | k = 50 |",
             "|---|---|---|---|"]
    for layers in (1, 2):
        for model in ("VAE", "IWAE"):
            values = [f"{table[(layers, model, k)]:.2f}" for k in (1, 5, 50)]
            lines.append(f"| {model}, {layers} stochastic layer{'s' * (layers > 1)} | "
                         + " | ".join(values) + " |")
    return "\n".join(lines)


def experiments_table(experiments, points, baseline, paper=None):
    """A table of investigation runs beside the committed run of the same (data set,
    method, N_z) and the paper: per run, the settings that differ from the baseline's,
    the step size, and the train / test bound at each of ``points`` (training samples).

    experiments : {name: record} (each a run's record, kingma_welling.train_run's)
    baseline : the committed results' records {run name: record}
    """
    paper = kw_figure2() if paper is None else paper
    head = ["experiment", "run", "changed", "step size"]
    head += [f"{split} at {n:.3g}" for n in points for split in SPLITS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label, record, changed):
        values = [f"{bound_at(record, s, n):.2f}" if record["samples"] >= n else ""
                  for n in points for s in SPLITS]
        return ("| " + " | ".join([label, record["run"], changed, f"{record['step_size']:g}"]
                                  + values) + " |")

    runs = dict.fromkeys(record["run"] for record in experiments.values())
    for run in runs:
        base = baseline[run]
        lines.append(row("committed run", base, "(none)"))
        for name, record in experiments.items():
            if record["run"] == run:
                changed = ", ".join(f"{k} {v}" for k, v in record["settings"].items()
                                    if base["settings"][k] != v)
                lines.append(row(name, record, changed))
        curve = paper[(base["dataset"], base["method"], base["latent_dim"])]
        values = [f"{curve.at(s, n):.1f}" if n in curve.samples else ""
                  for n in points for s in SPLITS]
        lines.append("| " + " | ".join(["paper", run, "", ""] + values) + " |")
    return "\n".join(lines)


def samples_number(text):
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (number >= 1 and number == int(number)):
        raise argparse.ArgumentTypeError(f"expected a number of samples like 1e6, got {text!r}")
    return int(number)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", choices=("kw", "iwae", "experiments"),
                   help="which table to print: a README table, or the investigations'")
    p.add_argument("samples", nargs="?", type=samples_number, default=10 ** 6,
                   help="kw: the training samples of the comparison (default: 1e6)")
    p.add_argument("--results", default=KW_RESULTS, type=Path,
                   help="the Kingma & Welling results.json (default: the committed one)")
    p.add_argument("--experiments", nargs="+", type=Path, metavar="RESULTS_JSON",
                   help="experiments: the results.json of each investigation (its parent "
                        "directory's name names it)")
    p.add_argument("--points", nargs="+", type=samples_number, metavar="N",
                   default=[10 ** 5, 10 ** 6], help="experiments: where to read the curves")
    args = p.parse_args(argv)
    if args.table == "experiments":
        if not args.experiments:
            p.error("experiments needs --experiments RESULTS_JSON ...")
        experiments = {}
        for path in args.experiments:
            for record in json.loads(path.read_text())["runs"].values():
                experiments[path.parent.name] = record
        baseline = json.loads(args.results.read_text())["runs"]
        print(experiments_table(experiments, args.points, baseline))
        return 0
    if args.table == "iwae":
        print(iwae_paper_table())
        return 0
    results = json.loads(args.results.read_text())
    if not kw_comparison_rows(results, args.samples):
        print(f"error: no pair of runs in {args.results} reaches {args.samples:g} samples",
              file=sys.stderr)
        return 2
    print(kw_comparison_table(results, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
