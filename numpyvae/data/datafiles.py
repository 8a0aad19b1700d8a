"""What every data set loader shares: the in-memory form, the cache, verified downloads.

    ImageDataset        uint8 images as rows (N, D), labels or None, the image shape
    default_cache_dir   where downloads go: $NUMPYVAE_CACHE, else ~/.cache/numpyvae
    download            one file from the first mirror that serves it with the right md5
    file_md5            the md5 of a file on disk

mnist.py and frey.py load their own file formats and use these for the rest.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DownloadError(RuntimeError):
    """No mirror delivered a file with the expected md5."""


@dataclass(frozen=True)
class ImageDataset:
    """An image data set split into train and test, pixels kept as uint8 (convert per batch).

    x_train : (N_train, D) uint8, D = rows * cols; x[i].reshape(image_shape) is image i
    y_train : (N_train,) uint8 labels, or None for an unlabeled data set (Frey Face)
    x_test  : (N_test, D) uint8
    y_test  : (N_test,) uint8 labels, or None
    image_shape : (rows, cols): (28, 28) for MNIST, (28, 20) for Frey Face
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    image_shape: tuple


def default_cache_dir():
    """$NUMPYVAE_CACHE if set, else ~/.cache/numpyvae; each data set has a folder in it."""
    env = os.environ.get("NUMPYVAE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "numpyvae"


def download(filename, dest_dir, md5, mirrors, timeout=30, hint=""):
    """Download dest_dir/filename from the first mirror that serves it with this md5.

    Each mirror (a base URL) is tried in turn: the file is streamed into a
    temporary file in dest_dir while its md5 is computed, and renamed to
    dest_dir/filename with os.replace (atomic) only if the md5 matches.  A
    dead mirror (refused connection, HTTP error, timeout after `timeout`
    seconds of silence) or a wrong md5 moves on to the next mirror; a failed
    attempt leaves nothing behind.  Returns the final Path; raises
    DownloadError listing every mirror's failure, followed by ``hint`` (how
    the user can provide the file without a download).
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            return _fetch(url, dest_dir / filename, md5, timeout)
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append(f"  {url}: {e}")
    raise DownloadError(f"could not download {filename} into {dest_dir}:\n"
                        + "\n".join(failures or ["  (no mirrors given)"]) + "\n" + hint)


def _fetch(url, path, md5, timeout):
    """Stream url into a temporary file next to path; rename it to path iff its md5 matches."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(f"md5 mismatch: got {digest.hexdigest()}, expected {md5}")
        os.chmod(tmp, 0o644)  # mkstemp makes files private; a dataset is not
        os.replace(tmp, path)
        return path
    finally:
        Path(tmp).unlink(missing_ok=True)


def file_md5(path):
    """The md5 hex digest of the file at ``path``, read in 1 MB pieces."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
