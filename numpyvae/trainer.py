"""Training a VAE on uint8 images: one step (``TrainingStep``) and one epoch (``train_epoch``).

As in CS231n's Solver, training lives apart from the model and from the
objectives: objectives.py computes a loss and its gradients from the
model's parts; this module feeds it batches and applies the optimizer.  A
whole run (settings, output directory, resume, evaluation) is run.fit.

One step (TrainingStep), on a batch of B examples of the uint8 data set x (N, D):

    idx    = perm[s*B : (s+1)*B]              (B,)     perm = rng.permutation(N), once per epoch
    x_u8   = x[idx]                           (B, D)   uint8, np.take into a preallocated buffer
    xb     = binarize(x_u8, mode, rng)        (B, D)   model dtype, into a preallocated buffer
    beta_t = kl_weight(t, beta, warmup_steps)          t = 0, 1, 2, ... the global step
    eps    = rng.standard_normal((k, B, L))           the noise of z (L = model.noise_dim)
    terms, grads = model.objectives.objective_loss_and_grads(model, xb, eps, rng, objective,
                        beta_t, out=grads, free_bits=free_bits)   objectives.py (one layer)
    model.check_loss_finite(xb, terms, grads)          the one check of a step
    optimizer.step(grads, grads_are_scratch=True, grads_checked=True)   one grads, reused

The last batch of an epoch holds the N mod B leftover examples (kept, as
PyTorch's DataLoader does by default) in views of the same buffers; a B
larger than N is one batch of all N examples, and the buffers hold
min(B, N) rows.  The data set stays uint8 (47 MB for MNIST, not 188 MB of
float32) and a step allocates nothing beyond what the model itself does.

Randomness.  One Generator drives training, ``train_generator(seed)`` =
``default_rng((seed, 1))`` (a stream apart from the weight initialisation's
``default_rng(seed)``): the per-epoch permutation, the eps of the
reparameterization and, with binarize 'dynamic', a fresh Bernoulli draw for
every batch (so each example is re-binarized every epoch).  Its state at an
epoch's end, with the parameters and the optimizer's state, is the whole
state of training: a checkpoint holds all three, and a resumed run is
bit-identical to one that never stopped.

KL warm-up (Bowman et al. 2016, Sønderby et al. 2016) raises the KL
weight linearly from 0 to beta over the first ``kl_warmup`` epochs:

    beta_t = beta * min(1, t / (kl_warmup * steps_per_epoch))

The objective (objectives.py) is the ELBO with the KL in closed form by
default; ``objective`` and ``k`` choose another (estimator A, k samples, the
IWAE bound, wake-sleep), and ``free_bits`` clamps its KL per dimension
(ops/free_bits.py).  The learning rate is constant, or follows the IWAE
paper's schedule (Burda et al. 2016, ``learning_rate(..., 'iwae')``):

    lr_e = lr * 10^(-i/7)  in the 3^i epochs of stage i = 0..7
                           (3280 epochs; later epochs stay at i = 7)

Reported training losses are the objective's, recon + KL (the -ELBO with
beta = 1 for the default), in nats per example: positive, lower is better;
beta_t only shapes the gradients.

Divergence.  A non-finite loss, or gradients that are not finite (the
optimizer refuses them before changing anything), stop training with
TrainingDiverged; ``before_update`` says whether any update had been
applied (if not, the initial model itself gives a non-finite loss, and the
learning rate is not to blame).
"""

import time

import numpy as np

from numpyvae.data.binarize import binarize
from numpyvae.objectives import check_free_bits, check_objective, check_trainable
from numpyvae.util.validate import NonFiniteError, check_vae


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient; ``epoch`` and ``step`` (1-based) say where
    (None: in the final evaluation), ``before_update`` whether the optimizer
    had not yet applied any update."""

    def __init__(self, message, epoch, step, before_update=False):
        super().__init__(message)
        self.epoch, self.step, self.before_update = epoch, step, before_update


def train_generator(seed):
    """The one Generator of training (see the module docstring)."""
    return np.random.default_rng((seed, 1))


def learning_rate(epoch, lr, schedule):
    """The learning rate of ``epoch`` (1-based): ``lr``, or under the 'iwae'
    schedule lr * 10^(-i/7) in stage i, which lasts 3^i epochs (i = 0..7)."""
    if schedule == "constant":
        return lr
    stage, last_epoch_of_stage = 0, 1
    while epoch > last_epoch_of_stage and stage < 7:
        stage += 1
        last_epoch_of_stage += 3 ** stage
    return lr * 10 ** (-stage / 7)


def kl_weight(step, beta, warmup_steps):
    """beta_t = beta * min(1, step / warmup_steps); beta when warmup_steps == 0."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


class TrainingStep:
    """One optimisation step on a batch of uint8 examples (the five lines of
    the module docstring), with its buffers allocated once:

        x_u8  (B, D) uint8          the gathered batch
        x_in  (B, D) model dtype    the model's input
        grads FlatParams            dL/dparams, written by the objective

    A smaller (last) batch uses the first rows of the same buffers.  The
    settings (objective, k, free_bits) are checked here, once; the data where they
    enter the run (run.fit); so a step checks only what it computed: the
    loss terms and the gradients, once (model.check_loss_finite).
    """

    def __init__(self, model, optimizer, batch_size, binarize_mode="none", objective="elbo", k=1,
                 free_bits=0.0):
        check_vae(model, "training")
        self.k, _ = check_objective(objective, k, 1.0)
        check_trainable(model, objective)
        self.free_bits = check_free_bits(free_bits, objective)
        self.model, self.optimizer, self.binarize_mode = model, optimizer, binarize_mode
        self.objective = objective
        self.x_u8 = np.empty((batch_size, model.input_dim), dtype=np.uint8)
        self.x_in = np.empty((batch_size, model.input_dim), dtype=model.dtype)
        self.grads = model.params.zeros_like()

    def __call__(self, x, idx, rng, beta=1.0):
        """Train on the examples ``x[idx]`` (idx: (m,) ints, m <= B); returns
        the batch means (loss, recon, kl) in nats (loss is the objective's).
        Raises validate.NonFiniteError, before the optimizer changes anything,
        on a non-finite loss or gradients that are not finite."""
        m = idx.shape[0]
        # mode="clip": with an out= array, the default mode="raise" copies
        # through a temporary; the indices of a permutation never need clipping
        np.take(x, idx, axis=0, out=self.x_u8[:m], mode="clip")
        xb = binarize(self.x_u8[:m], self.binarize_mode, rng=rng, dtype=self.model.dtype,
                      out=self.x_in[:m])
        eps = rng.standard_normal((self.k, m, self.model.noise_dim), dtype=self.model.dtype)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # the model's objectives module: objectives.py, two_layer_objectives.py
            terms, grads = self.model.objectives.objective_loss_and_grads(
                self.model, xb, eps, rng, self.objective, beta, out=self.grads,
                free_bits=self.free_bits)
        # the model raises NonFiniteError, naming what overflowed, rather than return NaN or inf
        self.model.check_loss_finite(xb, terms, grads)
        self.optimizer.step(grads, grads_are_scratch=True, grads_checked=True)
        return terms["loss"], terms["recon"], terms["kl"]


def train_epoch(model, optimizer, x, rng, *, batch_size=128, binarize_mode="none", beta=1.0,
                warmup_steps=0, first_step=0, epoch=1, progress=None, objective="elbo", k=1,
                order=None, batches=None, free_bits=0.0):
    """One pass over the uint8 data set ``x`` (N, D) in a fresh random order.

    Every step is a TrainingStep of ``objective`` with ``k`` samples (and
    ``free_bits``, its free-bits lambda);
    ``first_step`` is the global step t of the epoch's first batch (for the
    KL warm-up), ``epoch`` only labels errors, ``progress`` (a
    progress.Progress) is updated after every step.  Raises
    TrainingDiverged, before the optimizer step, on a non-finite loss or
    gradient.

    Two hooks for a protocol of its own (reproductions/kingma_welling.py):
    ``order``, the epoch's order of examples, M indices into x (default
    ``rng.permutation(N)``, drawn first; a shorter order leaves examples
    out), whose batch s is order[s*B : (s+1)*B], s = 0 .. ceil(M/B) - 1;
    and ``batches``, the s to train now (a range; default all of them):
    part of an epoch, to stop between two batches and go on later.

    Returns a dict of the means over the examples trained, in nats:
    ``loss`` (the objective: -ELBO by default), ``recon``, ``kl``;
    ``batch_losses`` (list, the loss of each batch), ``beta`` (the last
    step's KL weight), ``steps``, ``seconds`` and ``examples_per_sec``.
    """
    start = time.perf_counter()
    order = rng.permutation(x.shape[0]) if order is None else order
    steps = -(-order.shape[0] // batch_size)
    batches = range(steps) if batches is None else batches
    if not batches:
        raise ValueError(f"batches must name at least one of the epoch's {steps} batches")
    step = TrainingStep(model, optimizer, min(batch_size, order.shape[0]), binarize_mode,
                        objective, k, free_bits)
    loss_sum = recon_sum = kl_sum = 0.0
    seen, batch_losses = 0, []
    for s in batches:
        idx = order[s * batch_size:(s + 1) * batch_size]
        beta_t = kl_weight(first_step + s, beta, warmup_steps)
        try:
            loss, recon, kl = step(x, idx, rng, beta_t)
        except NonFiniteError as e:
            raise TrainingDiverged(f"training diverged at epoch {epoch}, step {s + 1}/{steps}: {e}",
                                   epoch, s + 1, before_update=optimizer.t == 0) from None
        m = idx.shape[0]
        loss_sum += loss * m
        recon_sum += recon * m
        kl_sum += kl * m
        seen += m
        batch_losses.append(loss)
        if progress is not None:
            progress.update(s + 1, examples=seen, loss=loss_sum / seen)
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / seen, "recon": recon_sum / seen, "kl": kl_sum / seen,
            "batch_losses": batch_losses, "beta": beta_t, "steps": len(batches),
            "seconds": seconds, "examples_per_sec": seen / seconds}
