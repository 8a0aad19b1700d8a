"""The scripts (demos/, benchmarks/, reproductions/) set OPENBLAS_THREAD_TIMEOUT for OpenBLAS
before anything loads numpy; the library never sets it (docs/benchmarks.md)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path for folder in ("demos", "benchmarks", "reproductions") for path in (ROOT / folder).glob("*.py")
                 if 'if __name__ == "__main__":' in path.read_text())


def sets_the_timeout(node):
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "os.environ.setdefault"
            and ast.literal_eval(node.value.args[0]) == "OPENBLAS_THREAD_TIMEOUT")


def third_party_imports(node):
    """Top-level names of the modules that ``node`` (a statement, with what it holds)
    imports that are not in the standard library."""
    names = []
    for inner in ast.walk(node):
        if isinstance(inner, ast.Import):
            names += [alias.name.split(".")[0] for alias in inner.names]
        elif isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
            names.append(inner.module.split(".")[0])
    return [name for name in names if name not in sys.stdlib_module_names]


def test_every_script_is_checked():
    assert {path.name for path in SCRIPTS} >= {"train_mnist.py", "bench.py", "profile_step.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_scripts_set_the_timeout_before_numpy_loads(script):
    body = ast.parse(script.read_text()).body
    setting = [i for i, node in enumerate(body) if sets_the_timeout(node)]
    assert len(setting) == 1, f"{script.name} does not set OPENBLAS_THREAD_TIMEOUT once"
    first_import = next((i for i, node in enumerate(body) if third_party_imports(node)),
                        len(body))                 # a script of the standard library only
    assert setting[0] < first_import, (f"{script.name} imports "
                                       f"{third_party_imports(body[first_import])} first")


def test_importing_the_library_sets_nothing():
    code = ("import os, pkgutil, importlib, numpyvae\n"
            "for m in pkgutil.walk_packages(numpyvae.__path__, 'numpyvae.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "None"
