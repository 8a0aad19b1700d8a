"""The Frey Face data set (Kingma & Welling 2014, Section 5): find, download, load, split.

Brendan Frey's 1,965 grey-level photographs of one face, 28 rows x 20
columns, as distributed on Sam Roweis' data page, in one MATLAB file:

    frey_rawface.mat    variable ff, uint8 (560, 1965), one image per column;
                        image i is ff[:, i].reshape(28, 20), values 8..238
                        md5 5aeb024d42b8a6091f30e5eb18c8a48d (no official md5 is
                        published; two independent public copies agree)

The data set has no labels and no official train/test split (the paper
states none).  ``frey_split`` makes a fixed one: the test set is ``n_test``
images drawn without replacement by ``np.random.default_rng(split_seed)``,
the training set is the rest, and both keep the file's order.  The default,
1600 train / 365 test from seed 0, has the sizes of Kingma's later code
(which shuffled, then held out the last 365).  The images are frames of a
video, so a random split puts near-identical neighbouring frames on both
sides: the test bound measures fit to this face, not to new faces.

Two ways to get the file, with different trust (as for MNIST, mnist.py):
  - a directory the user names (``load_frey(data_dir)``, ``--data-dir``):
    never downloads; the variable, dtype and shape are checked, and an md5
    other than the one above is only a warning;
  - the cache directory ``<cache>/frey``: a missing file is downloaded from
    ``MIRRORS`` (the paper's footnote) and must match the md5 exactly.
"""

import warnings
from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from numpyvae.data import datafiles
from numpyvae.data.datafiles import ImageDataset, default_cache_dir, file_md5

FILENAME = "frey_rawface.mat"
MD5 = "5aeb024d42b8a6091f30e5eb18c8a48d"
MIRRORS = ("http://www.cs.nyu.edu/~roweis/data/",)
IMAGE_SHAPE = (28, 20)                       # rows, cols
N_TEST = 365
SPLIT_SEED = 0


def frey_split(n, n_test=N_TEST, seed=SPLIT_SEED):
    """(train_index, test_index): a fixed split of n examples, each part in increasing order.

    test_index = sorted(default_rng(seed).permutation(n)[:n_test]),
    train_index = the other n - n_test indices.
    """
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) \
            or not 1 <= n_test < n:
        raise ValueError(f"n_test must be an integer in [1, {n - 1}] for {n} images, "
                         f"got {n_test!r}")
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def load_frey(data_dir=None, *, cache_dir=None, mirrors=MIRRORS, download=True,
              n_test=N_TEST, split_seed=SPLIT_SEED):
    """Frey Face as an ImageDataset: x_train (1600, 560), x_test (365, 560) uint8 by
    default, no labels (y_train = y_test = None), image_shape (28, 20).

    data_dir : a directory holding frey_rawface.mat; loaded as is, never
        downloaded, an md5 mismatch only warns.
    cache_dir : base cache directory when data_dir is None, default
        datafiles.default_cache_dir(); the file lives in cache_dir/frey and is
        downloaded (md5 checked strictly) if missing, unless download=False.
    n_test, split_seed : the split, see frey_split.
    Raises FileNotFoundError (no file and no download), datafiles.DownloadError
    (every mirror failed), ValueError (not a Frey Face file, a bad n_test).
    """
    if data_dir is not None:
        path = Path(data_dir) / FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"{data_dir} lacks {FILENAME}: a Frey Face directory holds "
                                    f"{FILENAME} (the MATLAB file of the paper's footnote)")
        if (md5 := file_md5(path)) != MD5:
            warnings.warn(f"{path}: md5 {md5} differs from the known Frey Face file's "
                          f"({MD5}); using it anyway", stacklevel=2)
    else:
        directory = Path(cache_dir or default_cache_dir()) / "frey"
        path = directory / FILENAME
        if not path.is_file():
            if not download:
                raise FileNotFoundError(f"{path} is missing and download=False.\n"
                                        + _how_to_provide(directory))
            download_file(directory, mirrors)
    faces = read_frey(path)
    train, test = frey_split(len(faces), n_test, split_seed)
    return ImageDataset(faces[train], None, faces[test], None, IMAGE_SHAPE)


def download_file(directory, mirrors=MIRRORS, timeout=30):
    """Download frey_rawface.mat into ``directory`` (see datafiles.download)."""
    return datafiles.download(FILENAME, directory, MD5, mirrors, timeout,
                              hint=_how_to_provide(directory))


def read_frey(path):
    """The images of a frey_rawface.mat file as rows: (N, 560) uint8, C-contiguous.

    The file holds them as the columns of ``ff`` (560, N); row i of the
    result is column i, and reshapes to the 28 x 20 image i.
    """
    try:
        variables = scipy.io.loadmat(path)
    except (MatReadError, ValueError, TypeError, IndexError, OSError, NotImplementedError) as e:
        # what scipy raises for a file that is not a MAT-file (an HTML error
        # page: IndexError), a truncated one (OSError) or a MATLAB 7.3 one
        raise ValueError(f"{path}: not a readable MATLAB file ({e})") from e
    if "ff" not in variables:
        found = sorted(k for k in variables if not k.startswith("__"))
        raise ValueError(f"{path}: no variable 'ff' (the Frey Face images); found {found}")
    ff = variables["ff"]
    d = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if ff.dtype != np.uint8 or ff.ndim != 2 or ff.shape[0] != d or ff.shape[1] < 2:
        raise ValueError(f"{path}: expected 'ff' to be uint8 ({d}, N) with N >= 2, one "
                         f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} image per column; "
                         f"got {ff.dtype} {ff.shape}")
    return np.ascontiguousarray(ff.T)


def _how_to_provide(cache):
    return (f"numpyvae needs {FILENAME} (Frey Face, {MIRRORS[0]}{FILENAME}).  Without "
            "internet, pass a directory holding it (--data-dir DIR, or "
            f"load_frey(data_dir=DIR)) or put it in {cache}.")
