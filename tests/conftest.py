"""Shared pytest fixtures: the real data sets, and local HTTP mirrors for download tests."""

import functools
import http.server
import os
import socket
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import settings

# the papers' protocols live beside demos/, in reproductions/ (not part of the library)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reproductions"))

from numpyvae.data import frey
from numpyvae.data.mnist import missing_files

# Under CI the property tests draw the same examples every run (a red CI must mean a
# change broke something, not that a new random example turned up); elsewhere they
# explore afresh each run, and the examples that failed are replayed from .hypothesis/.
ON_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")
settings.register_profile("ci", derandomize=True)
if ON_CI:
    settings.load_profile("ci")


def real_data_dir(variable, missing, holding):
    """Path(os.environ[variable]) when ``missing(path)`` is empty (nothing lacking).

    Otherwise the test is skipped, except on CI (CI=true), where it fails:
    CI must run the real-data tests.
    """
    reason = f"real data not found: set {variable} to a directory holding {holding}"
    directory = os.environ.get(variable)
    if not directory:
        problem = f"{variable} is not set"
    elif lacking := missing(directory):
        problem = f"{directory} lacks {', '.join(lacking)}"
    else:
        return Path(directory)
    if ON_CI:
        pytest.fail(f"{reason} ({problem}); CI=true requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_dir():
    """Path of a directory holding the real MNIST IDX files, from $NUMPYVAE_MNIST_DIR."""
    return real_data_dir("NUMPYVAE_MNIST_DIR", missing_files, "the four MNIST IDX files")


@pytest.fixture(scope="session")
def frey_dir():
    """Path of a directory holding the real frey_rawface.mat, from $NUMPYVAE_FREY_DIR."""
    return real_data_dir(
        "NUMPYVAE_FREY_DIR",
        lambda d: [] if (Path(d) / frey.FILENAME).is_file() else [frey.FILENAME],
        f"the Frey Face file {frey.FILENAME}")


# ----------------------------------------------------------- local mirrors --

@pytest.fixture
def serve():
    """serve(directory) -> base URL of an HTTP server on 127.0.0.1 serving directory."""
    servers = []

    def start(directory):
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def dead_url():
    """A URL whose port is bound but not listening: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


@pytest.fixture
def silent_url():
    """A URL whose server accepts connections but never answers: requests time out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"
