"""First-order optimizers: SGD with momentum, Adagrad, Adam, each beside its fast form.

All share one signature (as in CS231n's optim.py):

    opt = Adam(model.params, lr=1e-3, weight_decay=0.0)
    opt.step(grads)          # updates the parameter arrays in place
    opt.step(grads, grads_are_scratch=True)   # the same, and may overwrite grads

``grads`` has the keys and shapes of ``params``.  With optional L2 weight
decay the gradient used is ``g + weight_decay * p`` (the gradient of
``loss + weight_decay/2 * ||p||^2``).  The optimizer's state (moments, step
count) is explicit data: ``state_dict()`` / ``load_state_dict()``.

Speed: when ``params`` and ``grads`` are FlatParams of the same layout (a
model's ``params`` and the ``grads`` from ``loss_and_grads``), each update
runs once over the single contiguous buffer; otherwise it runs once per
tensor.  ``SGD``, ``Adagrad`` and ``Adam`` are the updates as the papers
write them; ``SGDFast``, ``AdagradFast`` and ``AdamFast``, what training
uses (run.settings.build_optimizer, unless --textbook), compute the same
updates with in-place operations (AdamFast block by block through a
cache-sized scratch buffer).  With ``grads_are_scratch=True``
(trainer.TrainingStep, which recomputes its gradients every step) SGDFast
uses the gradient arrays themselves as its scratch buffer once it has read
them: the same numbers, one array of the parameters' size fewer to stream
through the cache.  Timings: benchmarks/fast_forms.md.
"""

import math

import numpy as np

from numpyvae.model.params import FlatParams
from numpyvae.util.validate import check_finite, check_float, check_plain_array


def _zeros_like(params):
    if isinstance(params, FlatParams):
        return params.zeros_like()
    return {name: np.zeros_like(p) for name, p in params.items()}


class CheckedNumber:
    """A hyperparameter attribute that is checked (finite, in range) whenever it
    is set: in the constructor, or later by a learning-rate schedule."""

    def __init__(self, **bounds):
        self.bounds = bounds

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj, value):
        obj.__dict__[self.name] = check_float(value, self.name, **self.bounds)


class Optimizer:
    """Base class: bookkeeping shared by all optimizers; subclasses define
    ``state_names`` and ``_update(p, g, tmp, *state)`` for one array, and
    set ``tmp_may_be_g`` if ``_update`` never reads g after writing to tmp
    (so tmp may be g itself).

    ``lr`` and ``weight_decay`` (and a subclass's ``eps``) must be finite,
    lr > 0, weight_decay >= 0, eps > 0 (eps = 0 turns a zero gradient into
    0/0 = NaN); ``step`` refuses gradients that are not finite.
    """

    state_names = ()
    tmp_may_be_g = False
    lr = CheckedNumber(lo=0, lo_open=True)
    weight_decay = CheckedNumber(lo=0)
    eps = CheckedNumber(lo=0, lo_open=True)

    def __init__(self, params, lr, weight_decay=0.0):
        if not isinstance(params, dict) or not params or not all(
                type(p) is np.ndarray and p.dtype.kind == "f" for p in params.values()):
            raise TypeError("params must be a non-empty dict of plain float arrays (e.g. "
                            f"model.params), got {type(params).__name__}")
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.t = 0
        self.state = {name: _zeros_like(params) for name in self.state_names}
        self._tmp = _zeros_like(params)
        self._decayed = _zeros_like(params) if weight_decay else None

    def _check_grads(self, grads):
        """TypeError or ValueError unless ``grads`` is a dict of plain arrays with
        the keys of params; validate.NonFiniteError unless they are finite."""
        if not isinstance(grads, dict):
            raise TypeError("grads must be a dict of arrays with the keys of params (e.g. "
                            f"what model.loss_and_grads returns), got {type(grads).__name__}")
        for name, g in grads.items():
            check_plain_array(g, f"grads[{name!r}]")
        if set(grads) != set(self.params):
            raise ValueError(f"grads must have the keys of params; missing "
                             f"{sorted(set(self.params) - set(grads))}, "
                             f"extra {sorted(set(grads) - set(self.params))}")
        for name, g in grads.items():
            if g.shape != self.params[name].shape:
                raise ValueError(f"gradient {name!r} has shape {g.shape}, parameter "
                                 f"{self.params[name].shape}")
        for g in [grads.flat] if isinstance(grads, FlatParams) else grads.values():
            # one BLAS pass; inf or NaN if any gradient is, or if g^2 overflows (Adam's v)
            with np.errstate(over="ignore", invalid="ignore"):
                square_norm = float(np.dot(g.ravel(), g.ravel()))
            check_finite(square_norm, "the squared norm of grads",
                         "a gradient is NaN or inf, or too large to square; no parameter was "
                         "changed")

    def _arrays(self, grads, grads_are_scratch):
        """Yield (p, g, tmp, *state) for each array to update: the whole flat
        buffer at once when the layouts allow it, else tensor by tensor."""
        if isinstance(self.params, FlatParams) and self.params.same_layout(grads):
            def arrays(d):
                return [d.flat]
        else:
            def arrays(d):
                return [d[name] for name in self.params]
        states = zip(*(arrays(self.state[s]) for s in self.state_names))
        decayed = arrays(self._decayed) if self.weight_decay else arrays(grads)
        for p, g, tmp, decay_buf, state in zip(arrays(self.params), arrays(grads),
                                               arrays(self._tmp), decayed, states):
            if self.weight_decay:
                g_decayed = np.multiply(p, self.weight_decay, out=decay_buf)
                g_decayed += g
                g = g_decayed
            if grads_are_scratch and self.tmp_may_be_g:
                tmp = g
            yield (p, g, tmp, *state)

    def step(self, grads, grads_are_scratch=False, grads_checked=False):
        """Apply one update to every parameter, in place.

        ``grads`` is checked first (``_check_grads``: a dict of plain arrays
        with the keys and shapes of params, all finite), so a bad one raises
        before anything changes; ``grads_checked=True`` skips that for a
        caller that built them itself and proved them finite (trainer.
        TrainingStep, after the model's check_finite): each value is checked
        once.  ``grads_are_scratch=True`` allows the update to overwrite
        ``grads`` (see the module docstring); the parameters and state come
        out the same.
        """
        if not grads_checked:
            self._check_grads(grads)
        self.t += 1
        for arrays in self._arrays(grads, grads_are_scratch):
            self._update(*arrays)

    def state_dict(self):
        """Step count and state arrays (copies), by name: e.g. 'm/encoder.0.W'."""
        out = {"t": np.array(self.t)}
        for s in self.state_names:
            out.update({f"{s}/{k}": v.copy() for k, v in self.state[s].items()})
        return out

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned (values are copied in)."""
        self.t = int(state["t"])
        for s in self.state_names:
            for k, v in self.state[s].items():
                key = f"{s}/{k}"
                if key not in state or state[key].shape != v.shape:
                    raise ValueError(f"optimizer state {key!r} missing or of the wrong shape")
                v[...] = state[key]


class SGD(Optimizer):
    """SGD with (heavy-ball) momentum:

        v <- momentum * v - lr * g
        p <- p + v

    State: ``velocity``, of the parameters' shapes.  SGDFast is the same
    update without temporary arrays; training uses it.
    """

    state_names = ("velocity",)

    def __init__(self, params, lr=1e-2, momentum=0.9, weight_decay=0.0):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, lr, weight_decay)
        self.momentum = momentum

    def _update(self, p, g, tmp, velocity):
        velocity[...] = self.momentum * velocity - self.lr * g
        p += velocity


class SGDFast(SGD):
    """SGD's update in place, through the scratch buffer (or, with
    ``grads_are_scratch``, the gradient array itself once it is read): the
    same operations in the same order, so the same numbers, bit for bit."""

    tmp_may_be_g = True

    def _update(self, p, g, tmp, velocity):
        velocity *= self.momentum
        np.multiply(g, self.lr, out=tmp)
        velocity -= tmp
        p += velocity


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), the optimizer of Kingma & Welling (2014):

        G <- G + g^2                        the running sum of squared gradients
        p <- p - lr * g / (sqrt(G) + eps)

    State: ``sum_sq`` (G), of the parameters' shapes.  AdagradFast is the
    same update without temporary arrays; training uses it.
    """

    state_names = ("sum_sq",)

    def __init__(self, params, lr=1e-2, eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.eps = eps

    def _update(self, p, g, tmp, sum_sq):
        sum_sq += g * g
        p -= self.lr * (g / (np.sqrt(sum_sq) + self.eps))


class AdagradFast(Adagrad):
    """Adagrad's update in place, through one scratch buffer: the same
    operations in the same order, so the same numbers, bit for bit."""

    def _update(self, p, g, tmp, sum_sq):
        np.multiply(g, g, out=tmp)
        sum_sq += tmp
        np.sqrt(sum_sq, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, at step t = 1, 2, ...:

        m <- b1 * m + (1 - b1) * g          first moment (mean) of g
        v <- b2 * v + (1 - b2) * g^2        second moment (uncentred variance)
        m_hat = m / (1 - b1^t)              bias-corrected (m, v start at 0)
        v_hat = v / (1 - b2^t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    State: ``m`` and ``v``, each of the parameters' shapes.  AdamFast is the
    same update in fewer passes; training uses it.
    """

    state_names = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, lr, weight_decay)
        self.b1, self.b2, self.eps = b1, b2, eps

    def _update(self, p, g, tmp, m, v):
        b1, b2, t = self.b1, self.b2, self.t
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamFast(Adam):
    """Adam's update (the same numbers, to rounding) in ten in-place passes
    over the parameters, with no temporary arrays.

    The moments are kept as plain exponentially weighted sums,

        m_sum <- b1 * m_sum + g            (m = (1 - b1) * m_sum)
        v_sum <- b2 * v_sum + g^2          (v = (1 - b2) * v_sum)
        p <- p - lr_t * m_sum / (sqrt(v_sum) + eps_t)

    with lr_t = lr * (1 - b1) / (1 - b1^t) * c_t and eps_t = eps * c_t,
    c_t = sqrt((1 - b2^t) / (1 - b2)).  Substituting m and v into Adam's
    last line gives this one: m_hat = (1 - b1) m_sum / (1 - b1^t), and
    sqrt(v_hat) + eps = (sqrt(v_sum) + eps_t) / c_t.

    The ten passes run over BLOCK elements at a time (whole rows of a
    tensor's leading axis), with the first BLOCK elements of the scratch
    buffer as the only scratch: it stays in cache, and the gradients are
    never overwritten, so ``grads_are_scratch`` changes nothing here.  Every
    element goes through the same operations whatever the blocking: the
    numbers do not depend on BLOCK.

    State: ``m_sum`` and ``v_sum`` (so its state_dict differs from Adam's).
    """

    state_names = ("m_sum", "v_sum")
    # elements per block (a 1 MB float32 scratch): at the IWAE model's 425k parameters
    # 0.62 ms a step against 0.72 at 2 ** 16 and 0.60 unblocked (benchmarks/fast_forms.md)
    BLOCK = 2 ** 18

    def _update(self, p, g, tmp, m_sum, v_sum):
        c_t = math.sqrt((1 - self.b2 ** self.t) / (1 - self.b2))
        lr_t = self.lr * (1 - self.b1) / (1 - self.b1 ** self.t) * c_t
        eps_t = self.eps * c_t
        for rows in leading_blocks(p.shape, self.BLOCK):
            pb, gb, mb, vb = p[rows], g[rows], m_sum[rows], v_sum[rows]
            scratch = tmp[:pb.shape[0]] if pb.ndim else tmp
            mb *= self.b1
            mb += gb
            vb *= self.b2
            np.square(gb, out=scratch)
            vb += scratch
            np.sqrt(vb, out=scratch)
            scratch += eps_t
            np.divide(mb, scratch, out=scratch)
            scratch *= lr_t
            pb -= scratch


def leading_blocks(shape, block):
    """Index slices cutting an array of ``shape`` along its leading axis into
    blocks of whole rows, about ``block`` elements each (at least one row);
    a 0-d array is one block, ``...``."""
    if not shape:
        yield ...
        return
    rows = max(1, block // max(1, math.prod(shape[1:])))
    for i in range(0, shape[0], rows):
        yield slice(i, i + rows)
