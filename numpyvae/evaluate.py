"""Evaluating a trained VAE: log p(x) by importance sampling, the ELBO, active units.

The importance-weighted estimate of the marginal likelihood (Burda et al.
2016, "Importance Weighted Autoencoders"), with q(z|x) as the proposal:

    log p(x) ~ log (1/k) sum_{j=1}^k w_j,   w_j = p(x|z_j) p(z_j) / q(z_j|x),   z_j ~ q(z|x)

Its expectation is a lower bound on log p(x) that rises with k to log p(x)
(k = 1 is the ELBO with a sampled KL term).  Per example and sample:

    log w_j = log p(x|z_j)          likelihoods.*.log_prob_forward (the decoder's work)
            + log p(z_j)            gaussian.standard_normal_log_density_forward
            - log q(z_j|x)          gaussian.log_density_at_sample_forward

computed by objectives.log_weights, the IWAE objective's own forward pass,
in ``importance_weighted_log_likelihood`` (the textbook form: every sample
at once); ``importance_weighted_log_likelihood_fast``, what a run uses, gives
the same numbers (to rounding) in bounded memory and on several threads,
with objectives.log_weights_fast and logsumexp_fast.

Everything here is forward-only and works for any likelihood of the model
(Bernoulli, Gaussian with fixed or learned variance).
"""

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import logsumexp

from numpyvae import two_layer_objectives
from numpyvae.objectives import OBJECTIVES, bound, log_weights, log_weights_fast
from numpyvae.util.validate import check_choice, check_generator, check_positive_int, check_vae

# Elements per array of the evaluation's heavy path (importance_weighted_log_likelihood's
# batch_elements): where the 784-400-20 MNIST model evaluated fastest on one thread
BATCH_ELEMENTS = 2 ** 20


def importance_weighted_log_likelihood(model, x, eval_k=5000, rng=None):
    """Per-example importance-weighted estimate of log p(x), in nats (the textbook form):

        z_nj = mu_n + exp(logvar_n / 2) * eps_nj,   eps_nj ~ N(0, I),   j = 1..k   (k = eval_k)
        log w_nj = log p(x_n|z_nj) + log p(z_nj) - log q(z_nj|x_n)
        log p(x_n) ~ log (1/k) sum_j w_nj = logsumexp_j log w_nj - log k

    x : (N, D) of the model's dtype; eval_k : int >= 1, importance samples
    per example (1: a one-sample ELBO); rng : np.random.Generator, draws eps
    example by example, (N, k, L) in C order.  Returns (N,) float64.

    Every sample of every example at once: memory grows as N * k * D, so
    this is for a few examples.  importance_weighted_log_likelihood_fast
    gives the same numbers in bounded memory, on several threads.
    """
    check_vae(model, "evaluation")
    model.check_input(x)
    k = check_positive_int(eval_k, "eval_k")
    noise_dim, log_weights_of, _, _ = forward_functions(model)
    eps = check_generator(rng).standard_normal((x.shape[0], k, noise_dim),
                                               dtype=model.dtype)        # (N, k, L)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked below
        logw = log_weights_of(model, x, eps.transpose(1, 0, 2))         # (k, N)
        log_px = logsumexp(logw.astype(np.float64), axis=0) - math.log(k)
    model.check_finite(x, {"the importance-weighted log p(x)": log_px})
    return log_px


def importance_weighted_log_likelihood_fast(model, x, eval_k=5000, rng=None,
                                            batch_elements=BATCH_ELEMENTS, workers=1):
    """importance_weighted_log_likelihood in bounded memory and on several threads:
    the same numbers to rounding (tests/test_evaluate.py), what a run's final
    evaluation uses.  With k = eval_k:

        log p(x_n) ~ logsumexp_j [ log p(x_n|z_nj) + log p(z_nj) - log q(z_nj|x_n) ] - log k

    computed piece by piece with objectives.log_weights_fast and logsumexp_fast.

    Parameters
    ----------
    model : VAE
    x : (N, D) array of the model's dtype (checked by ``model.check_input``)
    eval_k : int >= 1, importance samples per example (1: a one-sample ELBO)
    rng : np.random.Generator, required; draws eps
    batch_elements : int >= 1, memory bound: no array of the heavy path
        (decoder activations and output, likelihood temporaries) holds more
        than this many elements, i.e. kc * n * width <= batch_elements for a
        decoder pass on kc samples of n examples, ``width`` the widest layer
        of the network (the decoder output K = D for Bernoulli, 2D for a
        learned-variance Gaussian).  The only array that grows with k is the
        (k, n) float64 table of log-weights of the current example chunk.
        (A decoder pass has at least one row, so batch_elements < width
        runs one sample at a time.)
        The default, BATCH_ELEMENTS = 2**20 (4 MB float32 arrays), is where the 784-400-20
        MNIST model evaluated fastest: larger arrays leave the L2 cache and
        need fresh pages for every temporary, and below 2**18 the matrix
        products get less efficient.
    workers : int >= 1, threads computing pieces at once (1: this thread
        alone).  NumPy's products and ufuncs release the GIL, so two
        threads keep two cores busy with the whole of the work, elementwise
        included; give each a one-thread BLAS (``blas.limited_blas_threads(1)``
        around the call, as run.final_evaluation does), or the two threads'
        products will fight over the cores.  The numbers do not depend on
        ``workers``: this thread draws every eps in the canonical order and
        the pieces are gathered in that order.  Memory: at most
        2 * workers + 1 pieces handed out at once, ``workers`` of them
        computing (each within ``batch_elements``), the rest holding only
        their eps.

    Returns
    -------
    (N,) float64.  The decoder and likelihood run in the model's dtype; the
    log-weights are gathered, and logsumexp'd, in float64.

    The estimate depends only on ``rng``'s state, not on ``batch_elements``
    or ``workers``:
    eps is drawn in one canonical order, example-major, (N, k, L) in C order,
    and every chunk draws a contiguous piece of it (either all k samples of
    n examples, or kc consecutive samples of one example).
    """
    check_vae(model, "evaluation")
    model.check_input(x)
    check_generator(rng)
    k = check_positive_int(eval_k, "eval_k")
    batch_elements = check_positive_int(batch_elements, "batch_elements")
    workers = check_positive_int(workers, "workers")
    n_total, (latent, _, log_weights_of, _) = x.shape[0], forward_functions(model)
    kc, n_chunk = chunk_sizes(model, k, n_total, batch_elements)

    def pieces():
        """((i0, j0), (model, xc, eps)) for every decoder pass, in the canonical order."""
        for i0 in range(0, n_total, n_chunk):
            xc = x[i0:i0 + n_chunk]                               # (n, D)
            for j0 in range(0, k, kc):
                # (n, m, L) is the next piece of the canonical (N, k, L) stream,
                # viewed as (m, n, L): sample-major, as log_weights_fast takes it
                eps = rng.standard_normal((xc.shape[0], min(kc, k - j0), latent),
                                          dtype=model.dtype).transpose(1, 0, 2)
                yield (i0, j0), (log_weights_of, model, xc, eps)

    result = np.empty(n_total, dtype=np.float64)
    for (i0, j0), piece_logw in in_order(_piece_log_weights, pieces(), workers):
        m, n = piece_logw.shape
        if j0 == 0:
            logw = np.empty((k, n), dtype=np.float64)             # log-weights of this chunk
        logw[j0:j0 + m] = piece_logw                              # (m, n), cast to float64
        if j0 + m == k:
            result[i0:i0 + n] = logsumexp_fast(logw) - math.log(k)
    model.check_finite(x, {"the importance-weighted log p(x)": result})
    return result


def _piece_log_weights(log_weights_of, model, xc, eps):
    """log_weights_of (forward_functions') one piece, (m, n); not finite values
    are let through (the caller checks the result)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # per thread
        return log_weights_of(model, xc, eps)


def forward_functions(model):
    """What the evaluation runs for the model's kind: (noise entries per sample,
    the forward-only log-weights (k, N) as the textbook writes them, their
    fast form, the bound of an objective (N,)).

        VAE          L,        objectives.log_weights, log_weights_fast, objectives.bound
        TwoLayerVAE  L1 + L2,  two_layer_objectives.log_weights (both forms), .bound
    """
    if model.kind == "two-layer-vae":
        return (model.noise_dim, two_layer_objectives.log_weights,
                two_layer_objectives.log_weights, two_layer_objectives.bound)
    return model.latent_dim, (lambda *args: log_weights(*args)[0]), log_weights_fast, bound


def in_order(function, jobs, workers):
    """Yield (key, function(*args)) for each (key, args) of ``jobs``, in order.

    workers == 1: computed here, one after another.  workers > 1: a pool of
    that many threads computes them, at most 2 * workers submitted ahead of
    the one yielded; ``jobs`` is still consumed here, in order (so a
    generator drawing random numbers draws them in the same order).
    """
    if workers == 1:
        for key, args in jobs:
            yield key, function(*args)
        return
    with ThreadPoolExecutor(workers) as pool:
        waiting = deque()
        for key, args in jobs:
            waiting.append((key, pool.submit(function, *args)))
            if len(waiting) > 2 * workers:
                first_key, future = waiting.popleft()
                yield first_key, future.result()
        while waiting:
            first_key, future = waiting.popleft()
            yield first_key, future.result()


def logsumexp_fast(a):
    """scipy.special.logsumexp(a, axis=0) for a (k, n) float array, the
    largest entry of each column subtracted first:

        log sum_j exp(a_j) = m + log sum_j exp(a_j - m),   m = max_j a_j

    The same numbers for finite input (to rounding), without scipy's
    per-call overhead, which the evaluation pays once per chunk (once per
    example at k >= 1000).  Where scipy gives inf or -inf (a column holding
    +inf, or only -inf) this gives NaN: non-finite either way, which the
    caller reports (model.check_finite).
    """
    m = np.max(a, axis=0)
    return np.log(np.sum(np.exp(a - m), axis=0)) + m


def chunk_sizes(model, k, n_total, batch_elements):
    """(kc, n): samples per decoder pass and examples per chunk, kc * n rows.

    rows = batch_elements // width decoder rows fit the memory bound.  If all
    k samples fit, a chunk is kc = k samples of n = rows // k examples;
    otherwise one example at a time (n = 1) in kc <= rows samples, the k
    samples split into equal-size pieces.  Either way the chunks cut the
    canonical eps stream into contiguous pieces.
    """
    width = max(*model.encoder.sizes, *model.decoder.sizes)
    rows = max(1, batch_elements // width)
    if k <= rows:
        return k, max(1, min(n_total, rows // k))
    pieces = -(-k // rows)
    return -(-k // pieces), 1


# ------------------------------------------------------------------- ELBO --

def evaluate_elbo(model, x, rng, batch_size=1000):
    """Means over a data set, in nats per example, of

        recon = -log p(x|z),   kl = KL(q(z|x) || N(0, I)),   loss = recon + kl = -ELBO

    as a dict of floats ``{"loss", "recon", "kl"}`` (the training loss with
    beta = 1, computed in batches without gradients).
    """
    logpx, kl = elbo_terms(model, x, rng, batch_size)
    recon, kl_mean = -float(np.mean(logpx)), float(np.mean(kl))
    return {"loss": recon + kl_mean, "recon": recon, "kl": kl_mean}


def elbo_terms(model, x, rng, batch_size=1000):
    """The per-example ELBO's terms over a data set, one z per example:

        logpx_n = log p(x_n|z_n),   kl_n = KL(q(z|x_n) || N(0, I)),   ELBO_n = logpx_n - kl_n

    x : (N, D) of the model's dtype; rng : np.random.Generator (the noise,
    drawn batch by batch).  Returns (logpx, kl), each (N,) float64 nats, from
    model.elbo_terms (objectives.elbo_terms) ``batch_size`` examples at a time.
    """
    check_vae(model, "evaluation")
    model.check_input(x)
    check_generator(rng)
    batch_size = check_positive_int(batch_size, "batch_size")
    logpx = np.empty(x.shape[0], dtype=np.float64)
    kl = np.empty(x.shape[0], dtype=np.float64)
    for i0 in range(0, x.shape[0], batch_size):
        logpx[i0:i0 + batch_size], kl[i0:i0 + batch_size] = \
            model.elbo_terms(x[i0:i0 + batch_size], rng)
    return logpx, kl


# ------------------------------------------------- a training objective's bound --

def evaluate_bound(model, x, objective, k, rng, batch_size=1000):
    """The mean over a data set of the bound a training objective maximises
    (objectives.bound: the ELBO with k samples, or the IWAE bound L_k), in
    nats per example; k samples per example drawn from ``rng``, ``batch_size``
    examples (k * batch_size decoder passes) at a time."""
    check_vae(model, "evaluation")
    model.check_input(x)
    check_choice(objective, "objective", OBJECTIVES)
    check_generator(rng)
    k = check_positive_int(k, "k")
    batch_size = check_positive_int(batch_size, "batch_size")
    noise_dim, _, _, bound_of = forward_functions(model)
    total = 0.0
    for i0 in range(0, x.shape[0], batch_size):
        xb = x[i0:i0 + batch_size]
        eps = rng.standard_normal((k, xb.shape[0], noise_dim), dtype=model.dtype)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked below
            total += float(np.sum(bound_of(model, xb, objective, eps), dtype=np.float64))
    model.check_finite(x, {f"the {objective} bound": total})
    return total / x.shape[0]


# ----------------------------------------------------------- active units --

def posterior_means(model, x, batch_size=1000):
    """mu(x) = E_{q(z|x)}[z] for every example, (N, L), encoded ``batch_size`` at a time."""
    check_vae(model, "evaluation")
    model.check_input(x)
    batch_size = check_positive_int(batch_size, "batch_size")
    return np.concatenate([model.encode(x[i0:i0 + batch_size])[0]
                           for i0 in range(0, x.shape[0], batch_size)])


def active_units(model, x, threshold=0.01, batch_size=1000):
    """Count the active latent dimensions (Burda et al. 2016, "Importance Weighted
    Autoencoders"):

        A_u = Var_x( E_{q(z|x)}[z_u] ) = Var_x( mu_u(x) ),   unit u active iff A_u > threshold

    x : (N, D) of the model's dtype.  The variance is over the N examples
    (ddof = 0), in float64.  Returns ``(count, variances)``: an int and the
    (L,) float64 A_u.
    """
    return count_active(posterior_means(model, x, batch_size), threshold)


def count_active(means, threshold=0.01):
    """(count, variances): A_u = Var_x(means[:, u]) (ddof = 0, float64) for the
    (N, L) posterior means of N examples, and how many exceed ``threshold``."""
    variances = np.var(means, axis=0, dtype=np.float64)
    return int(np.sum(variances > threshold)), variances


def top_posterior_means(model, x, rng, samples=100, rows=100_000):
    """E_{q(z2|x)}[z2] for a TwoLayerVAE, (N, L2), by Monte Carlo over z1:

        E_{q(z2|x)}[z2] = E_{q(z1|x)}[ E_{q(z2|z1)}[z2] ] = E_{q(z1|x)}[mu2(z1)]
                        ~ (1/S) sum_s mu2(mu1 + sigma1 * eps_s),   eps_s ~ N(0, I), s = 1..S

    x (N, D) of the model's dtype; S = ``samples`` draws of z1 per example
    from ``rng``, the top encoder run on at most ``rows`` rows at a time.
    """
    check_vae(model, "the top layer's posterior means", kinds=("two-layer-vae",))
    model.check_input(x)
    check_generator(rng)
    samples = check_positive_int(samples, "samples")
    n_chunk = max(1, check_positive_int(rows, "rows") // samples)
    means = np.empty((x.shape[0], model.top_latent_dim), dtype=np.float64)
    for i0 in range(0, x.shape[0], n_chunk):
        mu1, logvar1 = model.encode(x[i0:i0 + n_chunk])                       # (n, L1)
        eps = rng.standard_normal((samples, *mu1.shape), dtype=model.dtype)   # (S, n, L1)
        z1 = mu1 + np.exp(logvar1 / 2) * eps
        h2 = model.top_encoder.forward(model.params, z1.reshape(-1, model.latent_dim))[0]
        means[i0:i0 + n_chunk] = h2[:, :model.top_latent_dim].reshape(samples, mu1.shape[0], -1) \
            .mean(axis=0)
    return means


def top_active_units(model, x, rng, threshold=0.01, samples=100):
    """The active units of a TwoLayerVAE's top layer, A_u = Var_x(E_{q(z2|x)}[z2_u]) > threshold
    (top_posterior_means with ``samples`` draws of z1): ``(count, variances)`` as active_units."""
    return count_active(top_posterior_means(model, x, rng, samples), threshold)
