"""demos/gradcheck.py as a diagnostic: it passes on the library, and for each of
the deliberate bugs of issue 8, and of issue 18's blind spots (weight decay, a
reused gradient buffer, a wrong forward cache, bugs that only k > 1 or the IWAE
weights show), it fails, with the first failing row naming the operation that
was broken.

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
    ("Bernoulli backward (fast): the 1/2 of s - 1/2",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward", "d -= 0.5", "d -= 0.0")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_backward", "dout")),
    ("Bernoulli backward (fast): the sign of l dropped",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward",
       "np.copysign(d, logits, out=d)", "np.abs(d, out=d)")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_backward", "dout")),
    ("Bernoulli backward (fast): 1 + y for its reciprocal",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_backward", "d = np.divide(1, one_plus_y)",
       "d = np.multiply(1, one_plus_y)")],
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
]

# issue 18: the demo's blind spots on the main of that day, each now caught where
# it is made; expected first failing row: (function, checks, run within the section)
BLIND_SPOTS = [
    ("weight decay: sign flipped",
     [("optim", "Optimizer._arrays", "np.multiply(p, self.weight_decay, out=decay_buf)",
       "np.multiply(p, -self.weight_decay, out=decay_buf)")],
     ("optim.Optimizer._arrays", "g + wd p, one buffer", "")),
    ("weight decay: computed, not used",
     [("optim", "Optimizer._arrays", "g = g_decayed", "pass")],
     ("optim.Optimizer._arrays", "g + wd p, one buffer", "")),
    ("dW accumulated (+=) into the given buffer (fast form)",
     [("layers", "linear_backward_fast", "dW = np.matmul(x.T, dout, out=dW)",
       "dW = x.T @ dout if dW is None else np.add(dW, x.T @ dout, out=dW)")],
     ("layers.linear_backward_fast", "dW (out= reused)", "")),
    ("db accumulated (+=) into the given buffer (textbook form)",
     [("layers", "linear_backward", "db = np.sum(dout, axis=0, out=db)",
       "db = np.sum(dout, axis=0) if db is None else np.add(db, np.sum(dout, axis=0), out=db)")],
     ("layers.linear_backward", "db (out= reused)", "")),
    ("tanh caches x instead of its output",
     [("layers", "tanh_forward", "return out, out", "return out, x")],
     ("layers.tanh_forward", "cache", "")),
    ("sigmoid caches x instead of its output",
     [("layers", "sigmoid_forward", "return out, out", "return out, x")],
     ("layers.sigmoid_forward", "cache", "")),
    ("softplus caches its output instead of x",
     [("layers", "softplus_forward", "return softplus(x), x", "return softplus(x), softplus(x)")],
     ("layers.softplus_forward", "cache", "")),
    ("reparameterization caches the variance for std",
     [("gaussian", "reparameterize_forward", "return z, (std, eps)", "return z, (np.exp(logvar), eps)")],
     ("gaussian.reparameterize_forward", "cache", "")),
    ("KL caches logvar for var",
     [("gaussian", "kl_standard_normal_forward", "return kl, (mu, var)", "return kl, (mu, logvar)")],
     ("gaussian.kl_standard_normal_forward", "cache", "")),
    ("Bernoulli forward (fast) overwrites the logits it caches",
     [("likelihoods", "BernoulliLikelihoodFast.log_prob_forward", "a = np.abs(logits)",
       "a = np.abs(logits, out=logits)")],
     ("likelihoods.BernoulliLikelihoodFast.log_prob_forward", "cache", "")),
    ("mu and logvar swapped in the shared forward",
     [("objectives", "sampled_forward", "mu, logvar = h[:, :latent], h[:, latent:]",
       "logvar, mu = h[:, :latent], h[:, latent:]")],
     ("objectives.sampled_forward", "mu", "elbo, k 1")),
    ("k > 1: samples and examples mixed in the decoder output",
     [("objectives", "sampled_forward", "out = out.reshape(k, n, -1)",
       "out = out.reshape(n, k, -1).transpose(1, 0, 2)")],
     ("objectives.sampled_forward", "decoder_out", "elbo, k 3")),
    ("k > 1: the 1/k of the ELBO's sample mean missing",
     [("objectives", "elbo_closed_form_kl", "np.full((k, n), -1.0 / (n * k), dtype=model.dtype)",
       "np.full((k, n), -1.0 / n, dtype=model.dtype)")],
     ("objectives.elbo_closed_form_kl", "dlogpx", "elbo, k 3")),
    ("k > 1: dz summed over the samples as a mean",
     [("objectives", "backward_through_samples", "dmu_k.sum(axis=0), dlogvar_k.sum(axis=0)",
       "dmu_k.mean(axis=0), dlogvar_k.mean(axis=0)")],
     ("objectives.backward_through_samples", "dmu_via_z", "elbo, k 3")),
    ("k > 1: the 1/k of estimator A missing",
     [("objectives", "elbo_sampled_kl", "c = 1.0 / (n * k)", "c = 1.0 / n")],
     ("objectives.elbo_sampled_kl", "dlogpx", "elbo-mc, k 3")),
    ("k > 1: log q's direct gradient averaged over the samples",
     [("objectives", "_backward_through_log_weights", "dmu_q.sum(axis=0)", "dmu_q.mean(axis=0)")],
     ("objectives._backward_through_log_weights", "dmu_direct", "elbo-mc, k 3")),
    ("log w = log p(x|z) + log p(z) + log q",
     [("objectives", "log_weights", "logw -= logq", "logw += logq")],
     ("objectives.log_weights", "logw", "elbo-mc, k 3")),
    ("IWAE weights normalised over the batch, not the samples",
     [("log_mean_exp", "log_mean_exp_forward", "weights /= total",
       "weights /= np.sum(weights, axis=1, keepdims=True)")],
     ("objectives.iwae", "weights", "iwae, k 3")),
    ("IWAE weights not normalised",
     [("objectives", "iwae",
       "dlogw = log_mean_exp_backward(np.full(n, -1.0 / n, dtype=model.dtype), weights)",
       "dlogw = np.exp(logw) * (-1.0 / n)")],
     ("objectives.iwae", "dlogpx", "iwae, k 3")),
    ("IWAE: sign of the log q term",
     [("objectives", "iwae", "dlogw, dlogw, -dlogw", "dlogw, dlogw, dlogw")],
     ("objectives.iwae", "dlogq", "iwae, k 3")),
    ("k > 1: the log k of the IWAE loss missing",
     [("log_mean_exp", "log_mean_exp_forward",
       "return m + np.log(total) - math.log(a.shape[0]), weights",
       "return m + np.log(total), weights")],
     ("objectives.iwae", "loss", "iwae, k 3")),
    ("k > 1: the log k of objectives.bound missing",
     [("objectives", "bound", "return log_mean_exp_forward(logw)[0]",
       "return log_mean_exp_forward(logw)[0] + np.log(eps.shape[0])")],
     ("objectives.bound", "bound", "iwae, k 3")),
    ("k > 1: the log k of the evaluation's log p(x) missing (textbook form)",
     [("evaluate", "importance_weighted_log_likelihood",
       "log_px = logsumexp(logw.astype(np.float64), axis=0) - math.log(k)",
       "log_px = logsumexp(logw.astype(np.float64), axis=0)")],
     ("evaluate.importance_weighted_log_likelihood", "log p(x)", "iwae, k 3")),
    ("k > 1: the log k of the evaluation's log p(x) missing (fast form)",
     [("evaluate", "importance_weighted_log_likelihood_fast",
       "result[i0:i0 + n] = logsumexp_fast(logw) - math.log(k)",
       "result[i0:i0 + n] = logsumexp_fast(logw)")],
     ("evaluate.importance_weighted_log_likelihood_fast", "log p(x)", "iwae, k 3")),
    ("the evaluation's logsumexp without its max",
     [("evaluate", "logsumexp_fast", "return np.log(np.sum(np.exp(a - m), axis=0)) + m",
       "return np.log(np.sum(np.exp(a - m), axis=0))")],
     ("evaluate.logsumexp_fast", "logsumexp_j logw", "iwae, k 3")),
    ("the evaluation's pieces of samples written to the first rows",
     [("evaluate", "importance_weighted_log_likelihood_fast", "logw[j0:j0 + m] = piece_logw",
       "logw[:m] = piece_logw")],
     ("evaluate.importance_weighted_log_likelihood_fast", "log p(x), in pieces", "iwae, k 3")),
    ("fast log-weights: sign of log q",
     [("objectives", "log_weights_fast",
       "logw -= model.posterior.log_density_at_sample_forward(eps, logvar)[0]",
       "logw += model.posterior.log_density_at_sample_forward(eps, logvar)[0]")],
     ("objectives.log_weights_fast", "logw", "iwae, k 3")),
    ("wake phase without the 1/N",
     [("objectives", "wake_sleep", "dlogpx = np.full((k, n), -1.0 / n, dtype=model.dtype)",
       "dlogpx = np.full((k, n), -1.0, dtype=model.dtype)")],
     ("objectives.wake_sleep", "dlogpx", "wake-sleep, k 1")),
    ("sleep phase ascends instead of descends",
     [("objectives", "sleep_phase", "np.full(n, -1.0 / n, dtype=model.dtype)",
       "np.full(n, 1.0 / n, dtype=model.dtype)")],
     ("objectives.sleep_phase", "dmu_sleep", "wake-sleep, k 1")),
    ("Bernoulli sample: x = [u > p]",
     [("likelihoods", "BernoulliLikelihood.sample", "return (u < sigmoid(logits)).astype(logits.dtype)",
       "return (u > sigmoid(logits)).astype(logits.dtype)")],
     ("likelihoods.BernoulliLikelihood.sample", "x ~ p(x|z)", "")),
    ("the sleep phase dreams the decoder's mean, not a sample",
     [("objectives", "sleep_phase",
       "x_dream = model.likelihood.sample(model.decoder.forward(model.params, z_dream)[0], rng)",
       "x_dream = model.likelihood.mean(model.decoder.forward(model.params, z_dream)[0])")],
     ("objectives.sleep_phase", "x_dream", "wake-sleep, k 1")),
    ("the model's method drops beta (the public API's path)",
     [("vae", "VAE.loss_terms_and_grads",
       "objectives.loss_and_grads(self, x, rng=rng, beta=beta, eps=eps,",
       "objectives.loss_and_grads(self, x, rng=rng, beta=1.0, eps=eps,")],
     ("vae.VAE.loss_terms_and_grads (elbo, k 2)", "grads (out= reused)", "")),
    ("SGD overwrites the caller's gradients (grads_are_scratch ignored)",
     [("optim", "Optimizer._arrays", "if grads_are_scratch and self.tmp_may_be_g:",
       "if self.tmp_may_be_g:")],
     ("optim.SGDFast", "grads unchanged", "")),
    ("AdamFast's blocks miss the last rows",
     [("optim", "leading_blocks", "for i in range(0, shape[0], rows):",
       "for i in range(0, shape[0] - 1, rows):")],
     ("optim.AdamFast", "4 updates, per tensor", "")),
]
# the bugs above that the section-2 pass with k = 1 does not see (--objective, as run)
K_GREATER_THAN_1 = {
    "k > 1: samples and examples mixed in the decoder output": "elbo",
    "k > 1: the 1/k of the ELBO's sample mean missing": "elbo",
    "k > 1: dz summed over the samples as a mean": "elbo",
    "k > 1: the 1/k of estimator A missing": "elbo-mc",
    "k > 1: log q's direct gradient averaged over the samples": "elbo-mc",
    "k > 1: the log k of the IWAE loss missing": "iwae",
    "k > 1: the log k of objectives.bound missing": "iwae",
    "k > 1: the log k of the evaluation's log p(x) missing (textbook form)": "iwae",
    "k > 1: the log k of the evaluation's log p(x) missing (fast form)": "iwae",
}
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


def assert_first_failure(monkeypatch, bug, mutations, expected, argv=()):
    """With the bug applied, the demo's first failing row is ``expected``:
    (function, checks) or (function, checks, run)."""
    apply_bug(monkeypatch, mutations)
    failed, _ = first_failure(argv)
    assert failed is not None, f"the demo passes with the bug: {bug}"
    got = (failed.function, failed.quantity, failed.run)[:len(expected)]
    assert got == expected, f"{bug}: first failure {failed}"


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
    assert {row.section for row in default_rows} == set(range(1, len(demo.SECTIONS) + 1))
    assert len(default_rows) >= 250


def test_a_section_is_added_by_appending_it_to_SECTIONS(monkeypatch):
    """It is numbered, run, and selected with --sections like the others."""
    def check_added(report, args, rng):
        report.value("layers.linear_forward", "an added row", lambda: 1.0, 1.0)
    monkeypatch.setattr(demo, "SECTIONS", [*demo.SECTIONS, demo.Section("An added section", check_added)])
    number = len(demo.SECTIONS)
    _, rows = first_failure(["--sections", str(number)], first_only=False)
    assert [(row.section, row.quantity, row.passed) for row in rows] == [(number, "an added row", True)]


def test_section_2_runs_every_objective_and_k_greater_than_1(default_rows):
    runs = {row.run for row in default_rows if row.section == 2}
    assert runs == {"elbo, k 1", "elbo, k 3", "elbo-mc, k 3", "iwae, k 3", "wake-sleep, k 1"}


def test_every_forward_of_section_1_has_its_cache_checked(default_rows):
    rows = [row for row in default_rows if row.section == 1]
    forwards = {row.function for row in rows
                if row.function.endswith(("_forward", "_forward_fast", ".forward"))}
    cached = {row.function for row in rows if row.quantity.startswith("cache")}
    assert forwards == cached and len(forwards) >= 15


def test_every_forward_whose_cache_is_checked_says_in_its_docstring_what_it_caches(default_rows):
    for function in {row.function for row in default_rows if row.quantity.startswith("cache")}:
        module_name, *attrs = function.split(".")
        obj = numpyvae_module(module_name)
        for attr in attrs:
            obj = getattr(obj, attr)
        assert "cache" in inspect.getdoc(obj), f"{function}'s docstring does not say what it caches"


def test_the_activation_cache_table_is_what_each_backward_takes():
    """ACTIVATION_CACHE names the second argument of each activation's backward."""
    for name, cache in demo.ACTIVATION_CACHE.items():
        backward = getattr(numpyvae_module("layers"), f"{name}_backward")
        assert list(inspect.signature(backward).parameters)[1] == cache, name
    assert set(demo.ACTIVATION_CACHE) == set(numpyvae_module("layers").ACTIVATIONS)


def test_weight_decay_and_reused_buffers_have_rows(default_rows):
    quantities = {(row.function, row.quantity) for row in default_rows}
    for name in demo.OPTIMIZERS:
        assert (f"optim.{name}", "4 updates, weight decay") in quantities
    reused = {row.function for row in default_rows if "(out= reused)" in row.quantity}
    assert {"layers.linear_backward", "layers.linear_backward_fast", "mlp.MLP.backward",
            "vae.VAE.loss_terms_and_grads (iwae, k 3)",
            "vae.VAE.loss_terms_and_grads (wake-sleep, k 1)",
            "autoencoder.Autoencoder.loss_and_grads"} <= reused


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
    assert {row.section for row in rows} == set(range(1, len(demo.SECTIONS) + 1))


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


def test_sections_runs_only_the_sections_asked_for():
    _, rows = first_failure(["--sections", "1,4"], first_only=False)
    assert {row.section for row in rows} == {1, 4}


@pytest.mark.parametrize("flag", ["--beta=-1", "--hidden=0", "--k=0", "--activation=swish",
                                  "--likelihood=poisson", "--batch=x", "--sections=6",
                                  "--objective=vae"])
def test_bad_flags_exit_2(flag, capsys):
    with pytest.raises(SystemExit) as e:
        demo.main([flag])
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("bug, mutations, expected", BUGS, ids=[b[0] for b in BUGS])
def test_each_bug_of_the_issue_fails_first_on_the_broken_operation(monkeypatch, bug, mutations,
                                                                    expected):
    """With the default options, as the table of the closing note reports."""
    assert_first_failure(monkeypatch, bug, mutations, expected)


@pytest.mark.parametrize("bug, mutations, expected", MORE_BUGS, ids=[b[0] for b in MORE_BUGS])
def test_more_bugs_fail_first_on_the_broken_operation(monkeypatch, bug, mutations, expected):
    assert_first_failure(monkeypatch, bug, mutations, expected, SMALL)


@pytest.mark.parametrize("bug, mutations, expected", BLIND_SPOTS, ids=[b[0] for b in BLIND_SPOTS])
def test_each_blind_spot_of_issue_18_fails_first_where_it_is_made(monkeypatch, bug, mutations,
                                                                  expected):
    """With the default options: the first failing row names the edited
    function (and, in section 2, the run that shows it)."""
    assert_first_failure(monkeypatch, bug, mutations, expected)


@pytest.mark.parametrize("bug", sorted(K_GREATER_THAN_1))
def test_the_k_greater_than_1_bugs_pass_a_pass_with_k_1(monkeypatch, bug):
    """Why section 2 runs k > 1: these bugs pass every row of a k = 1 pass."""
    apply_bug(monkeypatch, next(b[1] for b in BLIND_SPOTS if b[0] == bug))
    failed, _ = first_failure(["--sections", "2", "--objective", K_GREATER_THAN_1[bug], "--k", "1"])
    assert failed is None, f"{bug}: fails at k = 1 already: {failed}"


def test_a_weight_decay_sign_error_fails_every_optimizer(monkeypatch):
    """Not only the shared row: each optimizer's own update with weight decay fails,
    and each update without it passes."""
    apply_bug(monkeypatch, BLIND_SPOTS[0][1])
    _, rows = first_failure(["--sections", "4"], first_only=False)
    result = {(row.function, row.quantity): row.passed for row in rows}
    for name in demo.OPTIMIZERS:
        assert not result[f"optim.{name}", "4 updates, weight decay"], name
        assert result[f"optim.{name}", "4 updates"], name


def test_an_accumulating_backward_fails_every_model_s_reused_buffer(monkeypatch):
    """With dW accumulated into the given buffer, every whole model's gradients
    written twice are 2x on the weights (the ratio is not one constant: the biases are right)."""
    apply_bug(monkeypatch, BLIND_SPOTS[2][1])
    _, rows = first_failure(["--sections", "3"], first_only=False)
    reused = [row for row in rows if row.quantity == "grads (out= reused)"]
    assert len(reused) == 8 and not any(row.passed for row in reused)
    assert all(row.passed for row in rows if row not in reused)


def test_a_failing_run_says_how_many_passed_and_where_it_first_failed(monkeypatch, capsys):
    apply_bug(monkeypatch, BUGS[0][1])
    assert demo.main(["-x"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert "passed; first failure: gaussian.reparameterize_backward (dlogvar) in section 1;" in last
    n, m = last.split(" passed")[0].split(" of ")
    assert int(n) < int(m)


def test_the_issue_lists_22_bugs():
    assert len(BUGS) == 22


# ------------------------------------------------------------ the table --

def table():
    """bug -> the demo's first failing row, for each bug (run as a script)."""
    lines = []
    for bug, mutations, _ in BUGS + MORE_BUGS + BLIND_SPOTS:
        with pytest.MonkeyPatch.context() as monkeypatch:
            apply_bug(monkeypatch, mutations)
            failed, _ = first_failure()
        ratio = "" if failed.ratio is None else f", analytic = {failed.ratio:.2f} x numerical"
        error = "raised " + failed.note if failed.error == float("inf") else f"rel err {failed.error:.1e}"
        run = f" ({failed.run})" if failed.run else ""
        lines.append(f"| {bug} | section {failed.section}{run}: {failed.function} {failed.quantity} "
                     f"({error}{ratio}) |")
    return lines


if __name__ == "__main__":
    print(f"numpyvae {numpyvae.__version__}: demos/gradcheck.py's first failing row per bug")
    print("| bug | first failing row |\n| --- | --- |")
    print("\n".join(table()))
