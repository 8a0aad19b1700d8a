"""Output blocks in docs/ are what their command prints today, so that none goes stale.

A block is checked when the line just above its opening fence is

    <!-- output of: [VAR=value ...] python demos/x.py --flag ... -->

The command runs in a scratch working directory (so that whatever it writes
under runs/ lands there), with `python` this interpreter, `demos/...` and
`exercises/...` the repository's files, `../shared/data/mnist` the folder
named by NUMPYVAE_MNIST_DIR (the block is skipped when that is unset), and
the VAR=value settings in its environment.  Every line of the block must
appear in the command's standard output, in order and contiguous (lines of
the output outside the block, such as timings, are not compared).  When a
change moves the numbers, rerun the command and paste its output.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- output of: (?P<command>.+?) -->$")
MNIST = "../shared/data/mnist"


def checked_blocks():
    """[(document, command, block lines)] for every marked block in docs/."""
    found = []
    for doc in sorted((ROOT / "docs").rglob("*.md")):
        lines = doc.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            match = MARKER.match(line)
            if not match:
                continue
            assert lines[i + 1].startswith("```"), f"{doc.name}: a marker must precede a fence"
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            found.append((doc.relative_to(ROOT).as_posix(), match["command"], lines[i + 2:end]))
    return found


def argv_and_env(command):
    """The marker's command as an argv list and an environment."""
    words = command.split()
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    argv = []
    for word in words:
        if word == "python":
            word = sys.executable
        elif word.startswith(("demos/", "exercises/")):
            word = str(ROOT / word)
        elif word == MNIST:
            if not os.environ.get("NUMPYVAE_MNIST_DIR"):
                pytest.skip("NUMPYVAE_MNIST_DIR is unset (the block's command reads MNIST)")
            word = os.environ["NUMPYVAE_MNIST_DIR"]
        argv.append(word)
    return argv, env


def contains_block(output_lines, block):
    n = len(block)
    return any(output_lines[i:i + n] == block for i in range(len(output_lines) - n + 1))


BLOCKS = checked_blocks()


def test_the_documents_have_checked_blocks():
    assert {doc for doc, _, _ in BLOCKS} >= {"docs/reparameterization.md", "docs/normalisation.md"}


@pytest.mark.parametrize("doc, command, block", BLOCKS,
                         ids=[f"{doc}:{command.split()[2 if '=' in command.split()[0] else 1]}"
                              for doc, command, _ in BLOCKS])
def test_a_documented_output_block_is_what_its_command_prints(doc, command, block, tmp_path):
    argv, env = argv_and_env(command)
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    output = [line.rstrip() for line in done.stdout.splitlines()]
    block = [line.rstrip() for line in block]
    assert contains_block(output, block), (
        f"the block under '<!-- output of: {command} -->' in {doc} is stale; the command now "
        "prints:\n" + done.stdout)


def test_a_stale_block_is_found():
    output = ["a", "b 1.00", "c"]
    assert contains_block(output, ["b 1.00", "c"]) and not contains_block(output, ["b 1.01", "c"])
    assert not contains_block(output, ["a", "c"])          # contiguous, not a subsequence
