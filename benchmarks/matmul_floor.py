"""The matrix products of a model's training step or evaluation, replayed alone.

A training step of an MLP layer (d_in -> d_out) on a batch of N does three
products: forward ``x @ W`` (N, d_in)(d_in, d_out); backward
``dW = x.T @ dout`` (d_in, N)(N, d_out) and ``dx = dout @ W.T``
(N, d_out)(d_out, d_in) -- except for the encoder's first layer, whose input
is data and needs no dx.  Replaying exactly those products, with the same
shapes, transposes, dtype and preallocated outputs, times the floor that no
implementation of the same model can beat with the same BLAS.
"""

import numpy as np


def _layer_sizes(mlp):
    return list(zip(mlp.sizes[:-1], mlp.sizes[1:]))


def training_step_products(model, n, rng, samples=1):
    """A function running every product of one forward+backward pass at batch n
    (training_step_jobs), with ``samples`` draws of z per example."""
    return _runner(training_step_jobs(model, n, rng, samples))


def training_step_jobs(model, n, rng, samples=1):
    """The (a, b, out) operands of every product of one forward+backward pass at
    batch n, with ``samples`` draws of z per example (the decoder then sees
    n * samples rows; so do a two-layer model's top encoder and top decoder,
    which run on the samples of z1)."""
    jobs = []
    networks = [(model.encoder, n), (model.decoder, n * samples)]
    if hasattr(model, "top_encoder"):
        networks += [(model.top_encoder, n * samples), (model.top_decoder, n * samples)]
    for mlp, rows in networks:
        for i, (d_in, d_out) in enumerate(_layer_sizes(mlp)):
            x = rng.standard_normal((rows, d_in)).astype(model.dtype)
            W = rng.standard_normal((d_in, d_out)).astype(model.dtype)
            dout = rng.standard_normal((rows, d_out)).astype(model.dtype)
            jobs.append((x, W, np.empty((rows, d_out), model.dtype)))            # forward
            jobs.append((x.T, dout, np.empty((d_in, d_out), model.dtype)))       # dW
            if not (mlp is model.encoder and i == 0):
                jobs.append((dout, W.T, np.empty((rows, d_in), model.dtype)))    # dx
    return jobs


def decoder_forward_products(model, n, rng):
    """A function running the decoder's forward products at batch n (the
    matrix-product floor of importance-weighted evaluation, per chunk)."""
    jobs = []
    for d_in, d_out in _layer_sizes(model.decoder):
        jobs.append((rng.standard_normal((n, d_in)).astype(model.dtype),
                     rng.standard_normal((d_in, d_out)).astype(model.dtype),
                     np.empty((n, d_out), model.dtype)))
    return _runner(jobs)


def _runner(jobs):
    def run():
        for a, b, out in jobs:
            np.matmul(a, b, out=out)
    return run
