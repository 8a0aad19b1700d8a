"""The output-directory guard (rundir.py): what a run may write, replace and remove."""

import os

import pytest

from numpyvae.util.files import stale_temporaries, write_atomic
from numpyvae.run.rundir import CHECKPOINT, METRICS, RUN_FILES, check_out, prepare_out
from numpyvae.run.settings import RunError
from run_helpers import snapshot

DEAD_PID = 999_999_999          # above any pid_max: no such process


def fill(directory, names):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(f"old {name}".encode())
    return directory


@pytest.mark.parametrize("present, resume, overwrite, message", [
    ([METRICS], False, False, f"already holds files a run writes ({METRICS})"),
    ([METRICS, "samples.png"], False, False, "replace them with --overwrite"),
    (["manifold.png"], False, False, "already holds files a run writes (manifold.png)"),
    ([CHECKPOINT, METRICS], False, False, "already holds a run (metrics.json, checkpoint.npz): "
                                          "continue it with --resume"),
    ([METRICS], True, False, "nothing to resume"),
    ([], True, True, "pass one of them"),
])
def test_check_out_refuses_and_changes_nothing(tmp_path, present, resume, overwrite, message):
    out = fill(tmp_path / "run", present + ["notes.txt"])
    before = snapshot(tmp_path)
    with pytest.raises(RunError) as e:
        check_out(out, resume, overwrite)
    assert message in str(e.value)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("relative, message", [
    ("f", "is a file, not a directory"),
    ("f/sub/run", "cannot be made: "),
])
def test_check_out_refuses_an_out_that_is_or_lies_under_a_file(tmp_path, relative, message):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunError, match=message):
        check_out(tmp_path / relative)
    assert (tmp_path / "f").read_text() == "x"


def test_check_out_accepts_a_new_path_or_a_directory_of_other_files(tmp_path):
    check_out(tmp_path / "new" / "deeper")
    check_out(fill(tmp_path / "run", ["notes.txt", "metrics.json.bak"]))
    check_out(fill(tmp_path / "old", [CHECKPOINT]), resume=True)
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_check_out_refuses_a_read_only_directory(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        for out in (read_only, read_only / "run"):
            with pytest.raises(RunError, match="not writable"):
                check_out(out)
    finally:
        read_only.chmod(0o700)


def test_prepare_out_refuses_where_nothing_can_be_written():
    """/proc is a directory nobody, root included, can make files in."""
    with pytest.raises(RunError, match=r"--out /proc is not writable: no file can be made in it"):
        prepare_out("/proc")
    with pytest.raises(RunError, match=r"--out /proc/numpyvae-run cannot be made"):
        prepare_out("/proc/numpyvae-run")


def test_overwrite_removes_exactly_the_files_a_run_writes(tmp_path):
    others = ["notes.txt", "metrics.json.bak", "my.png", f"{CHECKPOINT}.tmp-{os.getpid()}"]
    out = fill(tmp_path / "run", list(RUN_FILES) + others)
    kept = {name: (out / name).read_bytes() for name in others}
    prepare_out(out, overwrite=True)
    assert snapshot(out) == kept         # the live process's temporary is not stale


def test_prepare_out_removes_stale_temporaries_only(tmp_path):
    stale = [f"{CHECKPOINT}.tmp-{DEAD_PID}", f"{METRICS}.tmp-{DEAD_PID}"]
    live = [f"{CHECKPOINT}.tmp-{os.getpid()}", f"{CHECKPOINT}.tmp-abc", "x.npz.tmp-1"]
    out = fill(tmp_path / "run", stale + live + [METRICS])
    assert sorted(p.name for p in stale_temporaries(out / CHECKPOINT)) == stale[:1]
    prepare_out(out, overwrite=False)
    assert sorted(os.listdir(out)) == sorted(live + [METRICS])


def test_write_atomic_leaves_no_temporary_when_the_write_fails(tmp_path):
    def fail(f):
        f.write(b"half")
        raise OSError("disk full")
    with pytest.raises(OSError):
        write_atomic(tmp_path / METRICS, fail)
    assert os.listdir(tmp_path) == []
