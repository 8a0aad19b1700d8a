"""The progress line of a run (progress.py)."""

import io

from numpyvae.run.progress import Progress, format_seconds


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_without_a_terminal_prints_plain_lines():
    stream = io.StringIO()
    progress = Progress(5, label="epoch 1/2", stream=stream, plain_interval=0)
    for i in range(5):
        progress.update(i + 1, examples=10 * (i + 1), loss=100.0 - i)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 5
    assert lines[1].startswith("epoch 1/2  batch 2/5  loss 99.00") and "ex/s" in lines[1]
    assert "ETA" in lines[1] and "ETA" not in lines[-1]


def test_progress_on_a_terminal_rewrites_one_line_and_is_throttled():
    stream = FakeTerminal()
    progress = Progress(100, stream=stream, interval=0)
    progress.update(1, loss=5.0)
    progress.update(2)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 4 and "\n" not in text  # two updates, then blank and return
    assert text.endswith("\r")  # blanked, ready for the next line
    slow = FakeTerminal()
    throttled = Progress(100, stream=slow, interval=3600)
    for i in range(100):
        throttled.update(i + 1)
    assert slow.getvalue() == ""


def test_format_seconds():
    assert [format_seconds(s) for s in (0.84, 42.2, 185, 7620)] == \
        ["0.8 s", "42 s", "3 min 05 s", "2 h 07 min"]
