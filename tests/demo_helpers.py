"""Import a script of demos/ as a module, so tests can call its functions and main()."""

import importlib.util
from pathlib import Path

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def load_demo(filename):
    """demos/<filename> as a fresh module (named after the file, with a _demo suffix)."""
    spec = importlib.util.spec_from_file_location(Path(filename).stem + "_demo", DEMOS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
