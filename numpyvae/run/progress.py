"""A one-line progress report for a loop of known length (no tqdm).

    progress = Progress(total=469, label="epoch 1/10", unit="ex")
    for i in range(469):
        ...
        progress.update(i + 1, examples=(i + 1) * 128, loss=running_loss)
    progress.close()

It prints, e.g.,

    epoch 1/10  batch 120/469  loss 131.27  31,020 ex/s  ETA 1.1 s

On a terminal (``stream.isatty()``) that line is rewritten in place with a
carriage return, at most once per ``interval`` seconds (0.1 s: about ten
updates a second, so printing costs nothing next to the work), and
``close`` blanks it so that the caller's next line starts clean.  When the
output is a file or a pipe (a log, CI, a test) there is no ``\\r`` at all:
a plain line at most every ``plain_interval`` seconds (30 s), so a slow
loop still shows signs of life in a log without flooding it.
"""

import sys
import time


def format_seconds(seconds):
    """'0.8 s', '42 s', '3 min 05 s', '2 h 07 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Throttled progress line for ``total`` steps (see module docstring).

    Parameters
    ----------
    total : int, the number of steps
    label : str, printed first, e.g. 'epoch 3/10'
    unit : str, what ``examples`` counts, for the rate ('ex' -> 'ex/s')
    step_name : str, what a step is called ('batch' -> 'batch 12/469')
    stream : text stream, default sys.stdout
    tty : bool, override ``stream.isatty()`` (None: ask the stream)
    interval, plain_interval : float, minimum seconds between two lines on
        a terminal and elsewhere
    """

    def __init__(self, total, label="", unit="ex", step_name="batch", stream=None, tty=None,
                 interval=0.1, plain_interval=30.0):
        self.total, self.label, self.unit, self.step_name = int(total), label, unit, step_name
        self.stream = sys.stdout if stream is None else stream
        self.tty = self.stream.isatty() if tty is None else bool(tty)
        self.interval = interval if self.tty else plain_interval
        self.start = time.perf_counter()
        self._last = self.start   # the first line waits one interval: short loops stay silent
        self._width = 0           # length of the live line on a terminal, to blank it

    def line(self, done, examples=None, loss=None):
        """The progress text after ``done`` of ``total`` steps."""
        elapsed = time.perf_counter() - self.start
        parts = [self.label] if self.label else []
        parts.append(f"{self.step_name} {done}/{self.total}")
        if loss is not None:
            parts.append(f"loss {loss:.2f}")
        if examples is not None and elapsed > 0:
            parts.append(f"{examples / elapsed:,.0f} {self.unit}/s")
        if 0 < done < self.total:
            parts.append(f"ETA {format_seconds(elapsed / done * (self.total - done))}")
        return "  ".join(parts)

    def update(self, done, examples=None, loss=None):
        """Report ``done`` steps (and ``examples`` processed, the running ``loss``),
        unless the last line is less than one interval old."""
        now = time.perf_counter()
        if now - self._last < self.interval:
            return
        self._last = now
        text = self.line(done, examples, loss)
        if self.tty:
            # pad with spaces over the remains of a longer previous line
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        """Blank the live line on a terminal (nothing to do elsewhere)."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
