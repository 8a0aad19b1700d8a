"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

from numpyvae.mnist import missing_files


@pytest.fixture(scope="session")
def mnist_dir():
    """Path of a directory holding the real MNIST IDX files, from $NUMPYVAE_MNIST_DIR.

    Without them the test is skipped, except on CI (CI=true), where it fails:
    CI must run the real-data tests.
    """
    reason = "real MNIST not found: set NUMPYVAE_MNIST_DIR to a directory holding the four IDX files"
    directory = os.environ.get("NUMPYVAE_MNIST_DIR")
    if not directory:
        problem = "NUMPYVAE_MNIST_DIR is not set"
    elif missing := missing_files(directory):
        problem = f"{directory} lacks {', '.join(missing)}"
    else:
        return Path(directory)
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"{reason} ({problem}); CI=true requires it", pytrace=False)
    pytest.skip(reason)
