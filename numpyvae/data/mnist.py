"""MNIST-layout datasets: find, download and load the four IDX files.

MNIST, Fashion-MNIST and KMNIST all ship as the same four files:

    train-images-idx3-ubyte.gz   uint8 (N_train, rows, cols)   (60000, 28, 28)
    train-labels-idx1-ubyte.gz   uint8 (N_train,)               (60000,)
    t10k-images-idx3-ubyte.gz    uint8 (N_test, rows, cols)    (10000, 28, 28)
    t10k-labels-idx1-ubyte.gz    uint8 (N_test,)                (10000,)

Two ways to get them, with different trust:
  - a directory the user names (``load_mnist(data_dir)``, ``--data-dir``):
    never downloads; any dataset in this layout loads; headers, dtypes and
    counts are checked, and an md5 that differs from the official MNIST one
    is only a warning (it is expected for Fashion-MNIST, KMNIST or a
    re-packed copy);
  - the cache directory ``<cache>/mnist``: missing files are downloaded from
    ``MIRRORS`` and must match the official md5 exactly.
Each file may be gzipped or raw, and a raw file may drop the ".gz" suffix.
"""

import warnings
from pathlib import Path

import numpy as np

from .datafiles import ImageDataset, default_cache_dir, file_md5
from .datafiles import download as download_verified
from .idx import read_idx

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

# md5 of the official gzipped files; downloads must match, user files may differ
OFFICIAL_MD5 = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}
FILES = tuple(OFFICIAL_MD5)

# base URLs, tried in turn; the file name is appended
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


# load_mnist's return type, by the name this module has always used
MNIST = ImageDataset


def missing_files(directory):
    """The names in FILES found in directory neither gzipped nor raw (without ".gz")."""
    return [name for name in FILES if _find(Path(directory), name) is None]


def load_mnist(data_dir=None, *, cache_dir=None, mirrors=MIRRORS, download=True):
    """Load an MNIST-layout dataset as an ImageDataset (alias MNIST) of uint8 arrays.

    data_dir : a directory holding the four files (see module docstring);
        loaded as is, never downloaded, md5 mismatches only warn.
    cache_dir : base cache directory when data_dir is None, default
        default_cache_dir(); the files live in cache_dir/mnist.  Missing ones
        are downloaded (md5 checked strictly) unless download=False.
    Raises FileNotFoundError (files missing and not downloadable),
    datafiles.DownloadError (every mirror failed), IDXError or ValueError (bad files).
    """
    if data_dir is not None:
        return _load_dir(Path(data_dir))
    directory = Path(cache_dir or default_cache_dir()) / "mnist"
    missing = missing_files(directory)
    if missing and not download:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)} and download=False.\n"
                                + _how_to_provide(directory))
    _download_all(missing, directory, mirrors)
    return _load_dir(directory)


def download(filename, dest_dir, md5, mirrors=MIRRORS, timeout=30):
    """Download dest_dir/filename from the first mirror that serves it with this md5
    (datafiles.download: atomic, nothing left behind on failure); raises
    datafiles.DownloadError listing every mirror's failure and how to provide the files."""
    return download_verified(filename, dest_dir, md5, mirrors, timeout,
                             hint=_how_to_provide(dest_dir))


def _download_all(names, directory, mirrors):
    """Download each of names into directory (a helper: load_mnist's `download` is a flag)."""
    for name in names:
        download(name, directory, OFFICIAL_MD5[name], mirrors)


def _how_to_provide(cache):
    """Tell the user which files are needed and where they can put them."""
    return (f"numpyvae needs the four MNIST-layout files {', '.join(FILES)} "
            "(gzipped, or raw with the same names minus '.gz').  Without internet, pass "
            "a directory holding them (--data-dir DIR, or load_mnist(data_dir=DIR)) "
            f"or put them in {cache}.")


def _find(directory, name):
    """directory/name, else directory/name-without-.gz, else None."""
    for path in (directory / name, directory / name.removesuffix(".gz")):
        if path.is_file():
            return path
    return None


def _load_dir(directory):
    """Load and check the four files of directory; warn on non-official md5s."""
    if not directory.is_dir():
        problem = "is a file" if directory.exists() else "does not exist"
        raise FileNotFoundError(f"{directory} {problem}: expected a directory holding "
                                f"{', '.join(FILES)}")
    missing = missing_files(directory)
    if missing:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}: an MNIST-layout "
                                f"directory holds {', '.join(FILES)} (gzipped, or raw with "
                                "the same names minus '.gz')")
    paths = {name: _find(directory, name) for name in FILES}
    for name, path in paths.items():
        # the official md5s are those of the .gz files, so only those are compared
        if path.name == name and (md5 := file_md5(path)) != OFFICIAL_MD5[name]:
            warnings.warn(f"{path}: md5 {md5} differs from the official MNIST {name} "
                          f"({OFFICIAL_MD5[name]}); using it anyway", stacklevel=3)
    x_train, y_train = _read_pair(paths[TRAIN_IMAGES], paths[TRAIN_LABELS])
    x_test, y_test = _read_pair(paths[TEST_IMAGES], paths[TEST_LABELS])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"{directory}: training images are {x_train.shape[1:]} but "
                         f"test images are {x_test.shape[1:]}")
    return MNIST(x_train.reshape(len(x_train), -1), y_train,
                 x_test.reshape(len(x_test), -1), y_test, x_train.shape[1:])


def _read_pair(images_path, labels_path):
    """images (N, rows, cols) uint8 and labels (N,) uint8, checked to agree."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path}: expected uint8 images (N, rows, cols), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels (N,), "
                         f"got {labels.dtype} {labels.shape}")
    if images.size == 0:
        raise ValueError(f"{images_path} holds no pixels: {images.shape[0]} images of "
                         f"{images.shape[1]}x{images.shape[2]}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} "
                         f"holds {len(labels)} labels")
    return images, labels
