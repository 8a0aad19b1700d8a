"""Checkpoints: everything needed to continue a training run exactly, in one .npz.

    entry            content
    config           JSON of model.config()            } a model file: Autoencoder.load
    param/<name>     the model's parameters            } reads a checkpoint too
    optim/<key>      optimizer.state_dict(): 't', '<state>/<name>' (AdamFast: m_sum, v_sum)
    rng_state        JSON of rng.bit_generator.state (the training Generator)
    epoch            int, the number of completed epochs
    metrics          JSON, the run's metrics so far (its config included)

Model, optimizer state and Generator state at the end of an epoch are the
whole state of training (see trainer.py), so a run resumed from a
checkpoint continues bit for bit as if it had never stopped.

Files are written atomically (a temporary file, then os.replace), so a
crash or Ctrl-C while saving leaves the previous checkpoint intact.
"""

import json
import re
from dataclasses import dataclass

import numpy as np

from numpyvae.model.encoder_decoder import model_from_arrays
from numpyvae.util.files import load_npz, save_npz_atomic, write_atomic

OPTIM_PREFIX = "optim/"


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns.

    model : VAE (or Autoencoder) with the saved parameters
    optimizer_state : dict for ``optimizer.load_state_dict``
    rng_state : dict for ``rng.bit_generator.state``
    epoch : int, completed epochs
    metrics : dict, the metrics saved with it
    """

    model: object
    optimizer_state: dict
    rng_state: dict
    epoch: int
    metrics: dict


def save_checkpoint(path, model, optimizer, rng, epoch, metrics):
    """Write model, optimizer state, ``rng``'s state, ``epoch`` and ``metrics`` to ``path``."""
    arrays = {"config": json.dumps(model.config()),
              **{f"param/{k}": v for k, v in model.params.items()},
              **{OPTIM_PREFIX + k: v for k, v in optimizer.state_dict().items()},
              "rng_state": json.dumps(rng.bit_generator.state),
              "epoch": np.array(int(epoch)),
              "metrics": json.dumps(metrics, allow_nan=False)}
    save_npz_atomic(path, arrays)


def load_checkpoint(path):
    """Read a file written by ``save_checkpoint``; a ValueError names what is wrong."""
    arrays = load_npz(path, "training checkpoint")
    for key in ("rng_state", "epoch", "metrics"):
        if key not in arrays:
            raise ValueError(f"{path}: not a training checkpoint (no {key!r} entry)")
    epoch = arrays["epoch"]
    if epoch.shape != () or epoch.dtype.kind not in "iu" or epoch < 0:
        raise ValueError(f"{path}: the 'epoch' entry is not a count of epochs ({epoch!r})")
    return Checkpoint(
        model=model_from_arrays(arrays, source=str(path)),
        optimizer_state={k[len(OPTIM_PREFIX):]: v for k, v in arrays.items()
                         if k.startswith(OPTIM_PREFIX)},
        rng_state=_json_object(arrays, "rng_state", path),
        epoch=int(epoch),
        metrics=_json_object(arrays, "metrics", path))


def _json_object(arrays, key, path):
    """The JSON object (a dict) in the entry ``key``; a ValueError names the entry."""
    try:
        value = json.loads(str(arrays[key]))
    except ValueError as e:
        raise ValueError(f"{path}: the {key!r} entry is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: the {key!r} entry is not a JSON object")
    return value


def checkpoint_epoch(path):
    """The epoch the checkpoint at ``path`` holds, or None if there is no readable one."""
    try:
        return int(load_npz(path, "training checkpoint")["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# a JSON list of numbers as json.dumps(indent=...) spreads it, one number a line
_NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][-+.0-9eE]*(?:,\s*-?[0-9][-+.0-9eE]*)*)\s*\]")


def to_json(obj):
    """json.dumps indented for reading, but with lists of numbers kept on one line.

    Strict JSON: NaN or an infinity raises a ValueError (json.dumps would write
    NaN or Infinity, which strict parsers reject)."""
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]",
                            json.dumps(obj, indent=1, allow_nan=False))


def write_json_atomic(path, obj):
    """Write ``to_json(obj)`` to ``path`` atomically."""
    write_atomic(path, lambda f: f.write((to_json(obj) + "\n").encode()))
