"""Named parameter tensors that are views into one contiguous buffer.

As in llm.c, every parameter of a model lives in a single 1-D array
``flat``; ``params["decoder.0.W"]`` is a reshaped view into a slice of it.
Gradients and optimizer moments use the same layout, so an optimizer can
update *all* parameters with a handful of in-place NumPy operations on
``flat`` instead of one small loop body per tensor.

    layout = {"W": (3, 2), "b": (2,)}
    p = FlatParams(layout, np.float64)
    p["W"][0, 0] = 1.0          # writes into p.flat[0]
    p.flat.size == 8
"""

import math

import numpy as np


class FlatParams(dict):
    """A ``dict`` name -> ndarray whose arrays are views into ``self.flat``.

    Parameters
    ----------
    shapes : dict[str, tuple[int, ...]]
        Name and shape of every tensor, in storage order.
    dtype : numpy floating dtype
    flat : 1-D ndarray, optional
        Existing storage of the right size and dtype to wrap (no copy);
        a new zero buffer is allocated when omitted.
    """

    def __init__(self, shapes, dtype, flat=None):
        shapes = {name: tuple(int(n) for n in shape) for name, shape in shapes.items()}
        size = sum(math.prod(shape) for shape in shapes.values())
        if flat is None:
            flat = np.zeros(size, dtype=dtype)
        elif flat.shape != (size,) or flat.dtype != np.dtype(dtype):
            raise ValueError(
                f"flat buffer must have shape ({size},) and dtype {np.dtype(dtype)}, "
                f"got {flat.shape} {flat.dtype}")
        super().__init__()
        self.shapes = shapes
        self.flat = flat
        offset = 0
        for name, shape in shapes.items():
            n = math.prod(shape)
            self[name] = flat[offset:offset + n].reshape(shape)
            offset += n

    def zeros_like(self):
        """A new FlatParams of the same layout and dtype, filled with zeros."""
        return FlatParams(self.shapes, self.flat.dtype)

    def copy(self):
        """A deep copy (new storage)."""
        return FlatParams(self.shapes, self.flat.dtype, self.flat.copy())

    def same_layout(self, other):
        """True when ``other`` is a FlatParams with identical names, shapes and dtype."""
        return (isinstance(other, FlatParams) and other.shapes == self.shapes
                and other.flat.dtype == self.flat.dtype)
