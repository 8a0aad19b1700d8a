"""What the tests of runs share: a tiny synthetic data set (in memory or as IDX
files), the demo's main() loaded in-process, a small RunConfig, and a
snapshot of a directory's files to prove that nothing was touched."""

import importlib.util
import io
from pathlib import Path

import numpy as np

from idx_writer import write_idx
from numpyvae.data.mnist import MNIST, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from numpyvae.run.fit import fit
from numpyvae.run.settings import RunConfig

DEMO = Path(__file__).resolve().parents[1] / "demos" / "train_mnist.py"

# flags of a demo run that takes a fraction of a second on synthetic() data
TINY_FLAGS = ["--hidden", "16", "--latent-dim", "3", "--epochs", "1", "--eval-k", "5"]


def load_demo():
    """demos/train_mnist.py as a module (its main(argv) runs in-process)."""
    spec = importlib.util.spec_from_file_location("train_mnist_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic(n_train=300, n_test=100, seed=0):
    """An MNIST-like data set of 8x8 uint8 images: class c is a bright row c % 8, plus noise."""
    rng = np.random.default_rng(seed)

    def images(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 8, 8))
        x[np.arange(n), y % 8, :] += 190
        return x.reshape(n, 64).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = images(n_train), images(n_test)
    return MNIST(x_train, y_train, x_test, y_test, (8, 8))


def write_mnist_dir(directory, data=None):
    """Write ``data`` (default synthetic()) as the four raw MNIST IDX files; returns directory.

    Raw files (names without .gz) are loaded without an md5 comparison, so
    the demo prints no warning about them."""
    data = synthetic() if data is None else data
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {TRAIN_IMAGES: data.x_train.reshape(-1, *data.image_shape),
              TRAIN_LABELS: data.y_train,
              TEST_IMAGES: data.x_test.reshape(-1, *data.image_shape),
              TEST_LABELS: data.y_test}
    for name, a in arrays.items():
        write_idx(directory / name.removesuffix(".gz"), a)
    return directory


def tiny_config(tmp_path, **changes):
    settings = dict(epochs=3, batch_size=64, hidden=(16,), latent_dim=3, eval_k=5,
                    binarize="dynamic", kl_warmup=1.5, out=str(tmp_path / "run"))
    return RunConfig(**{**settings, **changes})


def quiet_fit(config, data, **kwargs):
    return fit(config, data, plots=False, stream=io.StringIO(), **kwargs)


def snapshot(directory):
    """{relative path: bytes} of every file under ``directory``."""
    directory = Path(directory)
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}
