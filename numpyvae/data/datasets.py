"""Data sets by name: ``load_dataset('mnist' | 'frey', data_dir=None)``.

    name     loader                 images    train / test    labels
    mnist    mnist.load_mnist       28 x 28   60000 / 10000   digits 0-9
    frey     frey.load_frey         28 x 20    1600 / 365     none

Both return a datafiles.ImageDataset of uint8 pixels.  ``data_dir`` names a
directory holding the data set's files (for 'mnist' any MNIST-layout
directory: Fashion-MNIST, KMNIST); without it the files come from the
cache, downloaded once if missing.  ``load_dataset_noting_warnings`` is the
form for scripts: one error type for every way the data can be missing,
and the loader's warnings (an md5 that differs) returned as text.
"""

import warnings

from numpyvae.data.datafiles import DownloadError
from numpyvae.data.frey import load_frey
from numpyvae.data.mnist import load_mnist

LOADERS = {"mnist": load_mnist, "frey": load_frey}
DATASETS = tuple(LOADERS)


def load_dataset(name, data_dir=None, **options):
    """The data set ``name`` (one of DATASETS) as an ImageDataset.

    data_dir and ``options`` (e.g. cache_dir, download) go to the loader.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return LOADERS[name](data_dir, **options)


class DataUnavailable(ValueError):
    """The data set could not be loaded: files missing, download failed, or a malformed file."""


def load_dataset_noting_warnings(name, data_dir=None, **options):
    """(load_dataset(name, data_dir, **options), [the text of each warning it gave]).

    Every failure (a missing file or directory, a failed download, a file
    that is not what it should be, an unknown name) is a DataUnavailable
    whose message starts 'no <name> data: '.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = load_dataset(name, data_dir, **options)
    except (OSError, DownloadError, ValueError) as e:   # ValueError: a malformed file
        raise DataUnavailable(f"no {name} data: {e}") from None
    return data, [str(w.message) for w in caught]
