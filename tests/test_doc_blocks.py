"""Output blocks in docs/ are what their command prints today, so that none goes stale.

A block is checked when the line just above its opening fence is

    <!-- output of: [VAR=value ...] python demos/x.py --flag ... -->

The command runs in a scratch working directory (so that whatever it writes
under runs/ lands there), with `python` this interpreter, `demos/...` and
`exercises/...` the repository's files, `../shared/data/mnist` the folder
named by NUMPYVAE_MNIST_DIR (the block is skipped when that is unset), and
the VAR=value settings in its environment.  Every line of the block must
appear in the command's standard output, in order and contiguous (lines of
the output outside the block, such as timings, are not compared): its words
exactly, its numbers to within NUMBER_RTOL relative plus one unit of their
last printed digit.  That much is the rounding of another CPU: a command
that trains for a while runs through other BLAS kernels and SIMD paths on
another machine, and its numbers move (the gradient-variance block, two
epochs of training then 500 samples per image, moved by up to 1.2%, on its
minimum over 800 components, between two CPUs with the same NumPy and
OpenBLAS).  When a change moves the numbers further, rerun the command and
paste its output.
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


NUMBER = re.compile(r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")
NUMBER_RTOL = 0.03


def last_digit(text):
    """The value of one unit in the last printed digit of the number ``text``
    ('1.692e+06' -> 1000, '0.4' -> 0.1, '753' -> 1)."""
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def words(parts):
    """The text between the numbers of a split line, each run of spaces one space."""
    return [re.sub(r"\s+", " ", text) for text in parts[::2]]


def lines_agree(printed, documented):
    """The same words (a run of spaces is a space: a column's width follows its
    numbers), and numbers within NUMBER_RTOL plus one unit of the documented
    number's last digit (re.split puts the numbers at odd positions)."""
    a, b = NUMBER.split(printed), NUMBER.split(documented)
    if len(a) != len(b) or words(a) != words(b):
        return False
    return all(abs(float(x) - float(y)) <= NUMBER_RTOL * abs(float(y)) + last_digit(y)
               for x, y in zip(a[1::2], b[1::2]))


def contains_block(output_lines, block):
    n = len(block)
    return any(all(lines_agree(printed, documented)
                   for printed, documented in zip(output_lines[i:i + n], block))
               for i in range(len(output_lines) - n + 1))


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
    assert contains_block(output, ["b 1.00", "c"]) and not contains_block(output, ["b 1.05", "c"])
    assert not contains_block(output, ["a", "c"])          # contiguous, not a subsequence
    assert not contains_block(output, ["B 1.00", "c"])     # words exactly
    assert not contains_block(output, ["b 1.00 2", "c"])   # and as many numbers


def test_numbers_agree_to_the_rounding_of_another_cpu():
    """Within 3% plus one unit of the last printed digit: the gradient-variance block's
    numbers on two CPUs agree (1.692e+06 / 1.693e+06, min 753 / 744; 0.4% / 0.5%), a
    number off by a tenth does not, and neither does one of another size or sign."""
    assert lines_agree("score  1.693e+06   9949  min 744  (0.5% above 3)",
                       "score  1.692e+06   9933  min 753  (0.4% above 3)")
    assert [last_digit(t) for t in ("1.692e+06", "0.4", "753", "4.365e+04")] == [1e3, 0.1, 1, 10]
    assert not lines_agree("max 7.9e+04", "max 7.03e+04")
    assert not lines_agree("gain 2e+06", "gain 2e+03") and not lines_agree("-ELBO -5", "-ELBO 5")
    assert lines_agree("  score    1.8e+07   9110", "  score  1.802e+07   9141")   # columns move
