"""Frey Face: loading synthetic .mat files written here, the split, downloading from a
server on 127.0.0.1 (fixtures in conftest.py), the real file, and load_dataset by name."""

import hashlib
import warnings

import numpy as np
import pytest
import scipy.io

from numpyvae.data import frey
from numpyvae.data.datafiles import DownloadError, ImageDataset
from numpyvae.data.datasets import DATASETS, load_dataset
from numpyvae.data.frey import FILENAME, IMAGE_SHAPE, frey_split, load_frey, read_frey

# fake files never have the real file's md5; tests that care record warnings themselves
pytestmark = pytest.mark.filterwarnings("ignore:.*differs from the known Frey Face:UserWarning")
D = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


def write_fake_frey(directory, n=40, seed=0, **variables):
    """Write directory/frey_rawface.mat holding ff, uint8 (560, n) (or the given variables)."""
    ff = np.random.default_rng(seed).integers(8, 239, (D, n), dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(directory / FILENAME, variables or {"ff": ff})
    return ff


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ split --

def test_split_is_fixed_disjoint_and_ordered():
    train, test = frey_split(1965)
    assert len(train) == 1600 and len(test) == 365
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1965))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    again = frey_split(1965)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    # the documented rule, computed another way
    expected = np.sort(np.random.default_rng(0).permutation(1965)[:365])
    assert np.array_equal(test, expected)
    assert not np.array_equal(frey_split(1965, seed=1)[1], test)
    assert len(frey_split(10, n_test=3)[1]) == 3


@pytest.mark.parametrize("n_test", [0, 40, -1, 2.5, True, "5"])
def test_split_rejects_bad_sizes(n_test):
    with pytest.raises(ValueError, match=r"n_test must be an integer in \[1, 39\] for 40 images"):
        frey_split(40, n_test)


# ------------------------------------------------------- from a directory --

def test_load_from_data_dir(tmp_path):
    ff = write_fake_frey(tmp_path, n=40)
    data = load_frey(tmp_path, n_test=10, mirrors=())
    assert isinstance(data, ImageDataset)
    assert data.x_train.shape == (30, D) and data.x_test.shape == (10, D)
    assert data.y_train is None and data.y_test is None
    assert data.image_shape == (28, 20)
    assert data.x_train.dtype == data.x_test.dtype == np.uint8
    train, test = frey_split(40, 10)
    # row i of x_train is column train[i] of ff, and reshapes to that 28 x 20 image
    np.testing.assert_array_equal(data.x_train, ff[:, train].T)
    np.testing.assert_array_equal(data.x_test, ff[:, test].T)
    np.testing.assert_array_equal(data.x_test[3].reshape(28, 20), ff[:, test[3]].reshape(28, 20))


def test_md5_mismatch_in_data_dir_only_warns(tmp_path, monkeypatch):
    write_fake_frey(tmp_path)
    with pytest.warns(UserWarning, match=f"{FILENAME}: md5 [0-9a-f]{{32}} differs from the "
                                         f"known Frey Face file's \\({frey.MD5}\\)"):
        load_frey(tmp_path, n_test=5)
    monkeypatch.setattr(frey, "MD5", md5_of(tmp_path / FILENAME))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_frey(tmp_path, n_test=5)


def test_missing_file_in_data_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} lacks {FILENAME}"):
        load_frey(tmp_path)


@pytest.mark.parametrize("content", ["html", "empty", "zeros", "truncated"])
def test_not_a_mat_file_is_a_clear_error(tmp_path, content):
    write_fake_frey(tmp_path, n=400)
    whole = (tmp_path / FILENAME).read_bytes()
    (tmp_path / FILENAME).write_bytes({"html": b"<html>not found</html>", "empty": b"",
                                       "zeros": bytes(2000), "truncated": whole[:5000]}[content])
    with pytest.raises(ValueError, match=f"{FILENAME}: not a readable MATLAB file"):
        load_frey(tmp_path)


@pytest.mark.parametrize("variables, match", [
    ({"faces": np.zeros((D, 5), np.uint8)}, r"no variable 'ff' .* found \['faces'\]"),
    ({"ff": np.zeros((D, 5), np.float64)}, r"expected 'ff' to be uint8 \(560, N\) .* got float64 \(560, 5\)"),
    ({"ff": np.zeros((5, D), np.uint8)}, r"28x20 image per column; got uint8 \(5, 560\)"),
    ({"ff": np.zeros((D, 1), np.uint8)}, r"N >= 2.* got uint8 \(560, 1\)"),
])
def test_wrong_contents_are_errors(tmp_path, variables, match):
    write_fake_frey(tmp_path, **variables)
    with pytest.raises(ValueError, match=match):
        read_frey(tmp_path / FILENAME)


# -------------------------------------------------------------- download --

def test_download_into_cache_then_load_from_it(tmp_path, serve, dead_url, monkeypatch):
    ff = write_fake_frey(tmp_path / "served", n=50)
    monkeypatch.setattr(frey, "MD5", md5_of(tmp_path / "served" / FILENAME))
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a verified download never warns
        data = load_frey(cache_dir=cache, mirrors=(dead_url, serve(tmp_path / "served")),
                         n_test=5)
    assert [p.name for p in (cache / "frey").iterdir()] == [FILENAME]
    assert md5_of(cache / "frey" / FILENAME) == frey.MD5
    np.testing.assert_array_equal(np.concatenate([data.x_train, data.x_test]),
                                  ff.T[np.concatenate(frey_split(50, 5))])
    again = load_frey(cache_dir=cache, mirrors=(), download=False, n_test=5)  # no network
    np.testing.assert_array_equal(again.x_test, data.x_test)


def test_download_with_wrong_md5_leaves_nothing(tmp_path, serve):
    write_fake_frey(tmp_path / "served")      # not the real file: its md5 differs
    url = serve(tmp_path / "served")
    with pytest.raises(DownloadError, match=f"{url}{FILENAME}: md5 mismatch: got "
                                            f"[0-9a-f]{{32}}, expected {frey.MD5}"):
        load_frey(cache_dir=tmp_path / "cache", mirrors=(url,))
    assert list((tmp_path / "cache" / "frey").iterdir()) == []


def test_offline_is_a_clear_error(tmp_path, dead_url):
    with pytest.raises(DownloadError) as info:
        load_frey(cache_dir=tmp_path, mirrors=(dead_url,))
    message = str(info.value)
    assert f"could not download {FILENAME} into {tmp_path / 'frey'}" in message
    assert f"{dead_url}{FILENAME}: " in message and "Connection refused" in message
    assert "--data-dir" in message and f"put it in {tmp_path / 'frey'}" in message
    assert list((tmp_path / "frey").iterdir()) == []


def test_without_download_says_what_is_needed(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_frey(cache_dir=tmp_path, download=False)
    message = str(info.value)
    assert f"{tmp_path / 'frey' / FILENAME} is missing and download=False" in message
    assert "--data-dir" in message and frey.MIRRORS[0] in message


def test_default_mirror_is_the_papers_footnote():
    assert frey.MIRRORS[0] + FILENAME == "http://www.cs.nyu.edu/~roweis/data/frey_rawface.mat"


# ---------------------------------------------------------- by name --

def test_load_dataset_by_name(tmp_path):
    from test_mnist import write_fake_mnist

    write_fake_frey(tmp_path / "frey", n=400)
    arrays = write_fake_mnist(tmp_path / "mnist")
    assert DATASETS == ("mnist", "frey")
    faces = load_dataset("frey", tmp_path / "frey")
    assert faces.x_test.shape == (365, D) and faces.image_shape == (28, 20)
    assert faces.y_test is None
    with pytest.warns(UserWarning, match="official MNIST"):
        digits = load_dataset("mnist", tmp_path / "mnist")
    np.testing.assert_array_equal(digits.y_train, arrays["train-labels-idx1-ubyte.gz"])
    with pytest.raises(FileNotFoundError):
        load_dataset("frey", cache_dir=tmp_path / "empty", download=False)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; choose one of mnist, frey"):
        load_dataset("cifar")


# --------------------------------------------------------- the real file --

def test_real_frey(frey_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the real file has the known md5
        data = load_frey(frey_dir)
    assert data.x_train.shape == (1600, 560) and data.x_test.shape == (365, 560)
    assert data.image_shape == (28, 20) and data.y_train is None
    faces = np.concatenate([data.x_train, data.x_test])
    assert faces.min() == 8 and faces.max() == 238
    # no two images equal and the split keeps every image once
    assert len(np.unique(faces, axis=0)) == 1965
    raw = scipy.io.loadmat(frey_dir / FILENAME)["ff"]
    np.testing.assert_array_equal(data.x_test[0], raw[:, frey_split(1965)[1][0]])
