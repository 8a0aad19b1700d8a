"""A multi-layer perceptron: linear layers with an activation between them.

    h_0 = x
    h_i = act(h_{i-1} @ W_i + b_i)     for the hidden layers i = 1..L-1
    out = h_{L-1} @ W_L + b_L          (the last layer is linear)

The MLP holds only its architecture; the weights live in a parameter dict
(usually a FlatParams owned by the model) under the names
``f"{prefix}.{i}.W"`` and ``f"{prefix}.{i}.b"``.
"""

from numpyvae.ops.layers import (ACTIVATIONS, ACTIVATIONS_FAST, check_activation, init_weight,
                                 linear_backward, linear_backward_fast, linear_forward)


class MLP:
    """sizes = (d_in, h_1, ..., d_out); ``activation`` after every layer but the last.

    textbook : run every layer's textbook form (layers.ACTIVATIONS, linear_backward)
        instead of the fast form where there is one (ACTIVATIONS_FAST,
        linear_backward_fast): the same numbers to rounding, slower.
    """

    def __init__(self, prefix, sizes, activation, textbook=False):
        check_activation(activation)
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"MLP sizes must be at least two positive integers, got {tuple(sizes)}")
        self.prefix = prefix
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.textbook = textbook
        table = ACTIVATIONS if textbook else ACTIVATIONS_FAST
        self._act_forward, self._act_backward, self._init = table[activation]
        self._linear_backward = linear_backward if textbook else linear_backward_fast

    def _names(self, i):
        return f"{self.prefix}.{i}.W", f"{self.prefix}.{i}.b"

    def param_shapes(self):
        """dict name -> shape of every weight (d_in, d_out) and bias (d_out,)."""
        shapes = {}
        for i, (d_in, d_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w, b = self._names(i)
            shapes[w], shapes[b] = (d_in, d_out), (d_out,)
        return shapes

    def init_params(self, params, rng):
        """Fill this MLP's weights in ``params`` in place (biases zero).

        Hidden layers use the init that suits the activation (He for
        ReLU-like, Glorot for tanh/sigmoid); the linear output layer Glorot.
        """
        n_layers = len(self.sizes) - 1
        for i, (d_in, d_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w, b = self._names(i)
            scheme = self._init if i < n_layers - 1 else "glorot"
            params[w][...] = init_weight(d_in, d_out, scheme, rng, params[w].dtype)
            params[b][...] = 0

    def multiply_adds(self):
        """Multiply-adds of the forward pass's matrix products per row: sum_i d_in_i * d_out_i."""
        return sum(d_in * d_out for d_in, d_out in zip(self.sizes[:-1], self.sizes[1:]))

    def layer_params(self, params, i):
        """(W, b) of layer i (0-based; -1 is the linear output layer) in ``params``."""
        w, b = self._names(range(len(self.sizes) - 1)[i])
        return params[w], params[b]

    def forward(self, params, x):
        """x : (N, d_in) -> out : (N, d_out), cache: one entry per layer, (linear_forward's
        cache (its input h, W), the activation's cache, None after the last layer)."""
        caches = []
        h = x
        n_layers = len(self.sizes) - 1
        for i in range(n_layers):
            w, b = self._names(i)
            h, lin_cache = linear_forward(h, params[w], params[b])
            act_cache = None
            if i < n_layers - 1:
                h, act_cache = self._act_forward(h)
            caches.append((lin_cache, act_cache))
        return h, caches

    def backward(self, grads, dout, caches, need_dx=True):
        """dout : (N, d_out) -> dx : (N, d_in) (None if not ``need_dx``).

        Writes dL/dW_i and dL/db_i into ``grads`` (in place), layer by layer
        from the output back: the activation's backward, then the linear's
        (layers.linear_backward, or its fast form linear_backward_fast).
        """
        dh = dout
        for i in reversed(range(len(caches))):
            lin_cache, act_cache = caches[i]
            if act_cache is not None:
                dh = self._act_backward(dh, act_cache)
            w, b = self._names(i)
            dh, _, _ = self._linear_backward(dh, lin_cache, grads[w], grads[b],
                                             need_dx=need_dx or i > 0)
        return dh
