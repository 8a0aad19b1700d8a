"""Loading MNIST-layout directories, and downloading from mirrors served on 127.0.0.1
(the fixtures serve, dead_url and silent_url are in conftest.py)."""

import hashlib
import warnings

import numpy as np
import pytest

from idx_writer import write_idx
from numpyvae.data import mnist
from numpyvae.data.datafiles import DownloadError
from numpyvae.data.idx import IDXError
from numpyvae.data.mnist import (FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
                            default_cache_dir, download, load_mnist)

# fake files never have the official md5s; tests that care record warnings themselves
pytestmark = pytest.mark.filterwarnings("ignore:.*differs from the official MNIST:UserWarning")


def write_fake_mnist(directory, n_train=6, n_test=4, shape=(28, 28), gz=True, seed=0):
    """Write a small random dataset in the MNIST layout; return {file name: array}."""
    rng = np.random.default_rng(seed)
    arrays = {
        TRAIN_IMAGES: rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        write_idx(directory / (name if gz else name.removesuffix(".gz")), a)
    return arrays


def md5_of(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_matches(data, arrays):
    n_train, n_test = len(arrays[TRAIN_LABELS]), len(arrays[TEST_LABELS])
    np.testing.assert_array_equal(data.x_train, arrays[TRAIN_IMAGES].reshape(n_train, -1))
    np.testing.assert_array_equal(data.y_train, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(data.x_test, arrays[TEST_IMAGES].reshape(n_test, -1))
    np.testing.assert_array_equal(data.y_test, arrays[TEST_LABELS])
    assert data.image_shape == arrays[TRAIN_IMAGES].shape[1:]
    assert data.x_train.dtype == data.y_train.dtype == np.uint8


@pytest.fixture
def official_md5_of_fakes(tmp_path, monkeypatch):
    """Fake gz files in tmp_path/served, with the official md5 table patched to match them."""
    served = tmp_path / "served"
    arrays = write_fake_mnist(served)
    for name in FILES:
        monkeypatch.setitem(mnist.OFFICIAL_MD5, name, md5_of(served / name))
    return served, arrays


def test_download_verifies_and_leaves_only_the_file(tmp_path, serve):
    write_fake_mnist(tmp_path / "served")
    url = serve(tmp_path / "served")
    md5 = md5_of(tmp_path / "served" / TRAIN_LABELS)
    path = download(TRAIN_LABELS, tmp_path / "dest", md5, mirrors=(url,))
    assert path == tmp_path / "dest" / TRAIN_LABELS
    assert path.read_bytes() == (tmp_path / "served" / TRAIN_LABELS).read_bytes()
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [TRAIN_LABELS]


def test_download_with_wrong_md5_leaves_nothing(tmp_path, serve):
    write_fake_mnist(tmp_path / "served")
    url = serve(tmp_path / "served")
    with pytest.raises(match=f"{url}{TRAIN_LABELS}: md5 mismatch: got "
                                                 f"[0-9a-f]{{32}}, expected 0{{32}}"):
        download(TRAIN_LABELS, tmp_path / "dest", "0" * 32, mirrors=(url,))
    assert list((tmp_path / "dest").iterdir()) == []


def test_dead_mirrors_fall_through_to_a_working_one(tmp_path, serve, dead_url, silent_url):
    write_fake_mnist(tmp_path / "served")
    (tmp_path / "empty").mkdir()
    mirrors = (dead_url, silent_url, serve(tmp_path / "empty"), serve(tmp_path / "served"))
    md5 = md5_of(tmp_path / "served" / TEST_LABELS)
    path = download(TEST_LABELS, tmp_path / "dest", md5, mirrors=mirrors, timeout=0.3)
    assert md5_of(path) == md5
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [TEST_LABELS]


def test_all_mirrors_dead_is_a_clear_error(tmp_path, serve, dead_url, silent_url):
    (tmp_path / "empty").mkdir()
    mirrors = (dead_url, silent_url, serve(tmp_path / "empty"))
    with pytest.raises(DownloadError) as info:
        download(TEST_LABELS, tmp_path / "dest", "0" * 32, mirrors=mirrors, timeout=0.3)
    message = str(info.value)
    assert f"could not download {TEST_LABELS} into {tmp_path / 'dest'}" in message
    lines = message.splitlines()
    assert lines[1].startswith(f"  {dead_url}{TEST_LABELS}: ") and "Connection refused" in lines[1]
    assert lines[2] == f"  {silent_url}{TEST_LABELS}: timed out"
    assert lines[3].startswith(f"  {mirrors[2]}{TEST_LABELS}: HTTP Error 404")
    assert "--data-dir" in message and all(name in message for name in FILES)
    assert list((tmp_path / "dest").iterdir()) == []


# ------------------------------------------------------ load_mnist(data_dir) --

@pytest.mark.parametrize("gz", [True, False])
def test_load_from_data_dir(tmp_path, gz):
    arrays = write_fake_mnist(tmp_path, gz=gz, shape=(5, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_mnist(tmp_path, mirrors=())
    assert_matches(data, arrays)
    assert data.x_train.shape == (6, 15) and data.image_shape == (5, 3)
    # random fakes never match the official md5 of the .gz files; raw files have none
    assert len(caught) == (4 if gz else 0)
    assert all(issubclass(w.category, UserWarning) and "md5" in str(w.message) for w in caught)


def test_md5_mismatch_in_data_dir_only_warns(tmp_path, official_md5_of_fakes, monkeypatch):
    served, arrays = official_md5_of_fakes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_matches(load_mnist(served), arrays)  # all four official: no warning
    monkeypatch.setitem(mnist.OFFICIAL_MD5, TRAIN_IMAGES, "0" * 32)
    with pytest.warns(UserWarning, match=f"{TRAIN_IMAGES}: md5 [0-9a-f]{{32}} differs from "
                                         f"the official MNIST {TRAIN_IMAGES}"):
        assert_matches(load_mnist(served), arrays)


def test_gzipped_files_without_gz_suffix_load(tmp_path):
    arrays = write_fake_mnist(tmp_path, gz=False)
    for name in FILES:  # overwrite the raw files with gzipped ones, keeping the raw names
        write_idx(tmp_path / name.removesuffix(".gz"), arrays[name], compress=True)
    assert_matches(load_mnist(tmp_path), arrays)


def test_missing_files_in_data_dir_are_named(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / TEST_IMAGES).unlink()
    (tmp_path / TRAIN_LABELS).unlink()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} lacks {TRAIN_LABELS}, {TEST_IMAGES}"):
        load_mnist(tmp_path)


def test_count_mismatch_is_an_error(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / TRAIN_LABELS, np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match=f"{TRAIN_IMAGES} holds 6 images but .*{TRAIN_LABELS} "
                                         "holds 5 labels"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("name, array, match", [
    (TRAIN_IMAGES, np.zeros((6, 784), np.uint8), r"expected uint8 images \(N, rows, cols\), got uint8 \(6, 784\)"),
    (TEST_IMAGES, np.zeros((4, 28, 28), np.int16), r"expected uint8 images .* got int16"),
    (TEST_LABELS, np.zeros((4, 1), np.uint8), r"expected uint8 labels \(N,\), got uint8 \(4, 1\)"),
    (TEST_IMAGES, np.zeros((4, 14, 14), np.uint8), r"training images are \(28, 28\) but test images are \(14, 14\)"),
])
def test_wrong_shapes_and_dtypes_are_errors(tmp_path, name, array, match):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / name, array)
    with pytest.raises(ValueError, match=match):
        load_mnist(tmp_path)


def test_malformed_file_in_data_dir_is_an_idx_error(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / TEST_LABELS).write_bytes(b"not gzip, not idx")
    with pytest.raises(IDXError, match=f"{TEST_LABELS}: not an IDX file"):
        load_mnist(tmp_path)


# ------------------------------------------------------- load_mnist(cache) --

def test_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPYVAE_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    arrays = write_fake_mnist(tmp_path / "cache" / "mnist")
    with pytest.warns(UserWarning, match="md5"):
        assert_matches(load_mnist(download=False), arrays)
    monkeypatch.delenv("NUMPYVAE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "numpyvae"


def test_load_downloads_missing_files_into_cache(tmp_path, official_md5_of_fakes, serve, dead_url):
    served, arrays = official_md5_of_fakes
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / TEST_LABELS).write_bytes((served / TEST_LABELS).read_bytes())
    data = load_mnist(cache_dir=cache, mirrors=(dead_url, serve(served)))
    assert_matches(data, arrays)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(FILES)
    assert_matches(load_mnist(cache_dir=cache, mirrors=(), download=False), arrays)


def test_load_without_download_says_what_is_needed(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(cache_dir=tmp_path, download=False)
    message = str(info.value)
    assert f"{tmp_path / 'mnist'} lacks" in message and "download=False" in message
    assert "--data-dir" in message and all(name in message for name in FILES)


def test_load_offline_says_what_is_needed(tmp_path, dead_url):
    with pytest.raises(DownloadError) as info:
        load_mnist(cache_dir=tmp_path, mirrors=(dead_url,))
    message = str(info.value)
    assert "Connection refused" in message and "--data-dir" in message
    assert f"put them in {tmp_path / 'mnist'}" in message
    assert list((tmp_path / "mnist").iterdir()) == []


# ------------------------------------------------------------- real MNIST --

def test_real_mnist(mnist_dir):
    with pytest.warns(UserWarning, match=f"md5 .* differs from the official MNIST {TRAIN_IMAGES}"):
        data = load_mnist(mnist_dir)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.image_shape == (28, 28)
    for a in (data.x_train, data.y_train, data.x_test, data.y_test):
        assert a.dtype == np.uint8
    for y in (data.y_train, data.y_test):
        assert set(np.unique(y)) == set(range(10))
    assert data.x_train.max() == data.x_test.max() == 255
    assert data.x_train.min() == 0
