"""Data sets by name: ``load_dataset('mnist' | 'frey', data_dir=None)``.

    name     loader                 images    train / test    labels
    mnist    mnist.load_mnist       28 x 28   60000 / 10000   digits 0-9
    frey     frey.load_frey         28 x 20    1600 / 365     none

Both return a datafiles.ImageDataset of uint8 pixels.  ``data_dir`` names a
directory holding the data set's files (for 'mnist' any MNIST-layout
directory: Fashion-MNIST, KMNIST); without it the files come from the
cache, downloaded once if missing.
"""

from numpyvae.frey import load_frey
from numpyvae.mnist import load_mnist

LOADERS = {"mnist": load_mnist, "frey": load_frey}
DATASETS = tuple(LOADERS)


def load_dataset(name, data_dir=None, **options):
    """The data set ``name`` (one of DATASETS) as an ImageDataset.

    data_dir and ``options`` (e.g. cache_dir, download) go to the loader.
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return LOADERS[name](data_dir, **options)
