"""demos/gradcheck.py as a diagnostic: it passes on the library, and for each of
the deliberate bugs of issue 8 it fails, with the first failing row naming the
operation that was broken.

Each bug is injected by monkeypatching: the function (or method) is compiled
again from its own source with one or two lines changed (``inject``), and
every reference to it in numpyvae's modules is rebound, so the demo, the
models and the objectives all call the broken version.  The test first
checks that the line to change is in the source, so a refactoring that moves
it fails here loudly instead of testing nothing.

    python tests/test_gradcheck_demo.py      # prints the table: bug -> first failing row
"""

import importlib
import importlib.util
import inspect
import pkgutil
import io
import sys
import textwrap
from pathlib import Path

import pytest

import numpyvae

DEMO_PATH = Path(__file__).resolve().parents[1] / "demos" / "gradcheck.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("gradcheck_demo", DEMO_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = load_demo()


# (bug, [(module, function or Class.method, line as in the source, the bug's line)],
#  expected first failing row: (function, checks))
BUGS = [
    ("reparameterization backward without its 1/2",
     [("gaussian", "reparameterize_backward", "dlogvar *= 0.5", "dlogvar *= 1.0")],
     ("gaussian.reparameterize_backward", "dlogvar")),
    ("std = exp(logvar) in the forward and the backward",
     [("gaussian", "reparameterize_forward", "std = np.exp(0.5 * logvar)", "std = np.exp(logvar)"),
      ("gaussian", "reparameterize_backward", "dlogvar *= 0.5", "dlogvar *= 1.0")],
     ("gaussian.reparameterize_forward", "z")),
    ("bias gradient as a mean",
     [("layers", "linear_backward", "db = np.sum(dout, axis=0, out=db)",
       "db = np.mean(dout, axis=0, out=db)")],
     ("layers.linear_backward", "db")),
    ("dx = dout @ W",
     [("layers", "linear_backward", "dx = dout @ W.T if need_dx else None",
       "dx = dout @ W if need_dx else None")],
     ("layers.linear_backward", "backward")),
    ("KL gradient: sign of dmu",
     [("gaussian", "kl_standard_normal_backward", "return dkl * mu, dkl * 0.5 * (var - 1)",
       "return -dkl * mu, dkl * 0.5 * (var - 1)")],
     ("gaussian.kl_standard_normal_backward", "dmu")),
    ("KL gradient: sign of dlogvar",
     [("gaussian", "kl_standard_normal_backward", "return dkl * mu, dkl * 0.5 * (var - 1)",
       "return dkl * mu, dkl * 0.5 * (1 - var)")],
     ("gaussian.kl_standard_normal_backward", "dlogvar")),
    ("KL gradient: sign of the 1 in (exp(logvar) - 1)",
     [("gaussian", "kl_standard_normal_backward", "return dkl * mu, dkl * 0.5 * (var - 1)",
       "return dkl * mu, dkl * 0.5 * (var + 1)")],
     ("gaussian.kl_standard_normal_backward", "dlogvar")),
    ("Bernoulli backward: sign (textbook form)",
     [("likelihoods", "BernoulliLikelihood.log_prob_backward",
       "return dlogp[..., None] * (x - sigmoid(logits))",
       "return dlogp[..., None] * (sigmoid(logits) - x)")],
     ("likelihoods.BernoulliLikelihood.log_prob_backward", "dout")),
    ("Bernoulli backward (fast): the 1/2 of (x - 1/2)",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward", "d -= 0.5", "d -= 0.0")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_backward", "dout")),
    ("Bernoulli backward (fast): the 1/2 of tanh(l/2) / 2",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward", "d *= -0.5", "d *= -1.0")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_backward", "dout")),
    ("Bernoulli backward (fast): tanh(l) for tanh(l/2)",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward", "d = np.multiply(logits, 0.5)",
       "d = np.multiply(logits, 1.0)")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_backward", "dout")),
    ("Bernoulli backward (fast): sign",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward", "d *= dlogp[..., None]",
       "d *= -dlogp[..., None]")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_backward", "dout")),
    ("learned variance: the 1/2 of dlogvar",
     [("gaussian", "gaussian_log_density_backward",
       "dlogvar = 0.5 * (dmean * diff - dlogp[..., None])",
       "dlogvar = (dmean * diff - dlogp[..., None])")],
     ("gaussian.gaussian_log_density_backward", "dlogvar")),
    ("ReLU mask >= 0",
     [("layers", "relu_backward", "return dout * (out > 0)", "return dout * (out >= 0)")],
     ("layers.relu_backward", "dx")),
    ("tanh' = 1 - out",
     [("layers", "tanh_backward", "return dout * (1 - out * out)", "return dout * (1 - out)")],
     ("layers.tanh_backward", "dx")),
    ("KL gradient not added to dmu",
     [("objectives", "backward_through_samples",
       "dmu, dlogvar = dmu_via_z + dmu_direct, dlogvar_via_z + dlogvar_direct",
       "dmu, dlogvar = dmu_via_z, dlogvar_via_z + dlogvar_direct")],
     ("objectives.backward_through_samples", "dmu")),
    ("beta ignored in the KL gradient",
     [("objectives", "elbo_closed_form_kl", "np.full(n, beta / n, dtype=model.dtype)",
       "np.full(n, 1.0 / n, dtype=model.dtype)")],
     ("objectives.elbo_closed_form_kl", "dmu_direct")),
    ("1/N missing (reconstruction path)",
     [("objectives", "elbo_closed_form_kl", "np.full((k, n), -1.0 / (n * k), dtype=model.dtype)",
       "np.full((k, n), -1.0 / k, dtype=model.dtype)")],
     ("objectives.elbo_closed_form_kl", "dlogpx")),
    ("1/N missing (KL path)",
     [("objectives", "elbo_closed_form_kl", "np.full(n, beta / n, dtype=model.dtype)",
       "np.full(n, beta, dtype=model.dtype)")],
     ("objectives.elbo_closed_form_kl", "dmu_direct")),
    ("Adam without the bias correction of m",
     [("optim", "AdamFast._update",
       "lr_t = self.lr * (1 - self.b1) / (1 - self.b1 ** self.t) * c_t",
       "lr_t = self.lr * (1 - self.b1) * c_t")],
     ("optim.AdamFast", "4 updates")),
    ("Adam without the bias correction of v",
     [("optim", "AdamFast._update", "c_t = math.sqrt((1 - self.b2 ** self.t) / (1 - self.b2))",
       "c_t = math.sqrt(1 / (1 - self.b2))")],
     ("optim.AdamFast", "4 updates")),
    ("Adam's eps not rescaled",
     [("optim", "AdamFast._update", "eps_t = self.eps * c_t", "eps_t = self.eps")],
     ("optim.AdamFast", "4 updates")),
]

# the same kinds of bug in the other form of each pair (beyond the issue's 22)
MORE_BUGS = [
    ("bias gradient as a mean (fast form)",
     [("layers", "linear_backward_fast",
       "db = np.matmul(np.ones(dout.shape[0], dtype=dout.dtype), dout, out=db)",
       "db = np.matmul(np.ones(dout.shape[0], dtype=dout.dtype) / dout.shape[0], dout, out=db)")],
     ("layers.linear_backward_fast", "db")),
    ("ReLU forward (fast) as |x|",
     [("layers", "relu_forward_fast", "out = np.maximum(x, np.zeros(x.shape[-1], dtype=x.dtype))",
       "out = np.abs(x)")],
     ("layers.relu_forward_fast", "out")),
    ("Adam (textbook) without the bias correction of m",
     [("optim", "Adam._update", "m_hat = m / (1 - b1 ** t)", "m_hat = m")],
     ("optim.Adam", "4 updates")),
    ("Adam (textbook) without the bias correction of v",
     [("optim", "Adam._update", "v_hat = v / (1 - b2 ** t)", "v_hat = v")],
     ("optim.Adam", "4 updates")),
    ("IWAE weights not normalised",
     [("objectives", "iwae", "dlogw = weights * (-1.0 / n)", "dlogw = np.exp(logw) * (-1.0 / n)")],
     ("objectives.iwae (k 3)", "encoder.0.W")),
]
SMALL = ["--hidden", "3", "--input-dim", "4", "--latent", "2", "--batch", "2"]   # for speed


def numpyvae_module(short_name):
    """The module of numpyvae whose own name is ``short_name`` ('layers' -> numpyvae.ops.layers):
    the demo's rows name functions as a student reads them, module.function."""
    names = [m.name for m in pkgutil.walk_packages(numpyvae.__path__, "numpyvae.")
             if m.name.rpartition(".")[2] == short_name]
    assert len(names) == 1, f"{short_name!r} names {len(names)} modules of numpyvae: {names}"
    return importlib.import_module(names[0])


def resolve(module_name, qualname):
    """(owner, attribute name, original) for 'function' or 'Class.method' in the module."""
    owner = numpyvae_module(module_name)
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, attr, getattr(owner, attr)


def inject(monkeypatch, module_name, qualname, edits):
    """Replace <module>.<qualname> by its own source with each (old, new) applied."""
    owner, attr, original = resolve(module_name, qualname)
    source = textwrap.dedent(inspect.getsource(original))
    for old, new in edits:
        assert source.count(old) == 1, f"{qualname}: the line {old!r} is not in the source once"
        source = source.replace(old, new)
    module = numpyvae_module(module_name)
    namespace = dict(vars(module))
    exec(compile(source, f"<bug in {module_name}.{qualname}>", "exec"), namespace)
    broken = namespace[attr]
    monkeypatch.setattr(owner, attr, broken)
    if owner is module:   # a module-level function: rebind every reference to it
        for name, mod in list(sys.modules.items()):
            if name.startswith("numpyvae"):
                for key, value in list(vars(mod).items()):
                    if value is original:
                        monkeypatch.setattr(mod, key, broken)
                    elif isinstance(value, dict):
                        for k, v in value.items():   # tables such as layers.ACTIVATIONS
                            if isinstance(v, tuple) and original in v:
                                monkeypatch.setitem(value, k, tuple(broken if f is original else f
                                                                    for f in v))


def apply_bug(monkeypatch, mutations):
    by_function = {}
    for module_name, qualname, old, new in mutations:
        by_function.setdefault((module_name, qualname), []).append((old, new))
    for (module_name, qualname), edits in by_function.items():
        inject(monkeypatch, module_name, qualname, edits)


def first_failure(argv=(), first_only=True):
    args = demo.parser().parse_args([*argv, *(["-x"] if first_only else [])])
    rows = demo.run(args, io.StringIO())
    failed = [row for row in rows if not row.passed]
    return (failed[0] if failed else None), rows


# ---------------------------------------------------------------- tests --

@pytest.fixture(scope="module")
def default_rows():
    """The rows of a full run with the default options."""
    return first_failure(first_only=False)[1]


def test_the_demo_passes_on_the_library_with_its_defaults(default_rows):
    failed = [row for row in default_rows if not row.passed]
    assert not failed, failed
    assert {row.section for row in default_rows} == {1, 2, 3, 4, 5}
    assert len(default_rows) >= 90


@pytest.mark.parametrize("argv", [
    ["--activation", "relu", "--likelihood", "gaussian-learned", "--beta", "1", "--objective",
     "iwae", "--k", "2", "--hidden", "4,3"],
    ["--activation", "leaky_relu", "--likelihood", "gaussian", "--objective", "elbo-mc", "--k",
     "2", "--latent", "3", *SMALL[:2]],
    ["--activation", "sigmoid", "--likelihood", "gaussian-sigmoid", *SMALL],
], ids=["relu-learned-variance-iwae-deep", "leaky-gaussian-elbo-mc", "sigmoid-frey-decoder"])
def test_the_demo_passes_on_the_library_with_other_options(argv):
    failed, rows = first_failure(argv, first_only=False)
    assert failed is None, f"{failed.function} ({failed.quantity}) fails: {failed}"
    assert {row.section for row in rows} == {1, 2, 3, 4, 5}


def test_every_row_names_a_function_that_exists(default_rows):
    """'gaussian.reparameterize_backward' -> numpyvae.ops.gaussian.reparameterize_backward, etc."""
    for function in {row.function.split(" ")[0] for row in default_rows}:
        module_name, *attrs = function.split(".")
        obj = numpyvae_module(module_name)
        for attr in attrs:
            assert hasattr(obj, attr), f"row names {function}, which is not in numpyvae"
            obj = getattr(obj, attr)


def test_the_defaults_cover_beta_not_1_and_an_activation_other_than_relu():
    args = demo.parser().parse_args([])
    assert args.beta != 1 and args.activation != "relu"


def test_main_prints_a_summary_and_exit_status(capsys):
    assert demo.main(SMALL) == 0
    out = capsys.readouterr().out
    assert "of" in out and "passed" in out.splitlines()[-1]
    n_rows = sum(line.rstrip().endswith(("PASS", "FAIL")) for line in out.splitlines())
    assert out.splitlines()[-1].startswith(f"{n_rows} of {n_rows} passed")


@pytest.mark.parametrize("flag", ["--beta=-1", "--hidden=0", "--k=0", "--activation=swish",
                                  "--likelihood=poisson", "--batch=x"])
def test_bad_flags_exit_2(flag, capsys):
    with pytest.raises(SystemExit) as e:
        demo.main([flag])
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("bug, mutations, expected", BUGS, ids=[b[0] for b in BUGS])
def test_each_bug_of_the_issue_fails_first_on_the_broken_operation(monkeypatch, bug, mutations,
                                                                    expected):
    """With the default options, as the table of the closing note reports."""
    apply_bug(monkeypatch, mutations)
    failed, _ = first_failure()
    assert failed is not None, f"the demo passes with the bug: {bug}"
    assert (failed.function, failed.quantity) == expected, f"{bug}: first failure {failed}"


@pytest.mark.parametrize("bug, mutations, expected", MORE_BUGS, ids=[b[0] for b in MORE_BUGS])
def test_more_bugs_fail_first_on_the_broken_operation(monkeypatch, bug, mutations, expected):
    apply_bug(monkeypatch, mutations)
    failed, _ = first_failure(SMALL)
    assert failed is not None, f"the demo passes with the bug: {bug}"
    assert (failed.function, failed.quantity) == expected, f"{bug}: first failure {failed}"


def test_a_failing_run_says_how_many_passed_and_where_it_first_failed(monkeypatch, capsys):
    apply_bug(monkeypatch, BUGS[0][1])
    assert demo.main(["-x"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert "passed; first failure: gaussian.reparameterize_backward (dlogvar)" in last
    n, m = last.split(" passed")[0].split(" of ")
    assert int(n) < int(m)


def test_the_issue_lists_22_bugs():
    assert len(BUGS) == 22


# ------------------------------------------------------------ the table --

def table():
    """bug -> the demo's first failing row, for each bug (run as a script)."""
    lines = []
    for bug, mutations, _ in BUGS + MORE_BUGS:
        with pytest.MonkeyPatch.context() as monkeypatch:
            apply_bug(monkeypatch, mutations)
            failed, _ = first_failure()
        ratio = "" if failed.ratio is None else f", analytic = {failed.ratio:.2f} x numerical"
        error = "raised " + failed.note if failed.error == float("inf") else f"rel err {failed.error:.1e}"
        lines.append(f"| {bug} | section {failed.section}: {failed.function} {failed.quantity} "
                     f"({error}{ratio}) |")
    return lines


if __name__ == "__main__":
    print(f"numpyvae {numpyvae.__version__}: demos/gradcheck.py's first failing row per bug")
    print("| bug | first failing row |\n| --- | --- |")
    print("\n".join(table()))
