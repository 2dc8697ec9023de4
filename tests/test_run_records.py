"""What a run leaves behind: the metrics CSV beside its JSON, the code version in its config,
a recorded command that runs again as printed, and a rerun that keeps the earlier run."""
import csv
import json
import os
import shlex
import subprocess
import sys
from argparse import Namespace

import pytest
from conftest import ROOT, Stop, run_script, stop_after, write_image_tree
from test_trainer import make_trainer

from training.cli import ArgumentParser, resume_command
from training.storage import keep_previous_run
from utils import code_version


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_rows(rows, history):
    assert len(rows) == len(history)
    for row, entry in zip(rows, history):
        assert list(row) == list(history[0])  # one column per history key
        for key, value in entry.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-12), key


def test_metrics_csv_is_the_history_and_continues_on_resume(tmp_path):
    seen = []

    def on_check(run):  # written at every check, before the callback
        seen.append(len(read_csv(tmp_path / "b" / "run.metrics.csv")))
        stop_after(3)(run)

    part = make_trainer(tmp_path / "b", epochs=3, patience=0, on_check=on_check)
    with pytest.raises(Stop):
        part.train()
    assert seen == [1, 2, 3]
    run = make_trainer(tmp_path / "b", epochs=3, patience=0).train(resume=True)
    assert len(run["history"]) == 6
    same_rows(read_csv(tmp_path / "b" / "run.metrics.csv"), run["history"])
    saved = json.loads((tmp_path / "b" / "run.json").read_text())
    same_rows(read_csv(tmp_path / "b" / "run.metrics.csv"), saved["history"])


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_code_version_in_a_git_checkout_and_outside_one(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "a")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert code_version(repo) == {"commit": head, "dirty": False}
    (repo / "a.py").write_text("x = 2\n")
    assert code_version(repo) == {"commit": head, "dirty": True}
    outside = tmp_path / "plain"
    outside.mkdir()
    assert code_version(outside) is None
    empty = tmp_path / "empty"  # a repository without a commit
    empty.mkdir()
    git(empty, "init", "-q")
    assert code_version(empty) is None


def test_code_version_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git to be found
    assert code_version(ROOT) is None


def test_a_recorded_command_is_quoted_and_resumes_as_printed():
    parser = ArgumentParser(prog="task1_lenet.py")
    parser.add_argument("--output-dir")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(["--output-dir", "my runs/it's here", "--resume"])
    assert shlex.split(args.command) == ["python", "task1_lenet.py", "--output-dir",
                                         "my runs/it's here", "--resume"]
    again = resume_command(args)
    assert shlex.split(again) == ["python", "task1_lenet.py", "--output-dir",
                                  "my runs/it's here", "--resume"]
    assert resume_command(Namespace(command=None)) == "the same command and --resume"


def run_recorded(command, cwd):
    words = shlex.split(command)
    assert words[0] == "python"
    return subprocess.run([sys.executable, *words[1:]], cwd=cwd, capture_output=True, check=False,
                          text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})


def test_a_recorded_command_with_a_space_runs_again_and_keeps_the_earlier_run(tmp_path):
    tree = write_image_tree(tmp_path / "data tree", n_train_per_class=20)
    out = tmp_path / "my runs"
    first = run_script("task1_lenet.py", "--data-dir", str(tree), "--epochs", "1",
                       "--batch-size", "16", "--output-dir", str(out), "--no-progress")
    assert first.returncode == 0, first.stderr
    run = json.loads((out / "task1_lenet.json").read_text())
    for name in ("task1_lenet.json", "task1_lenet.metrics.csv", "task1_lenet.pt"):
        assert (out / name).is_file(), name
    same_rows(read_csv(out / "task1_lenet.metrics.csv"), run["history"])
    assert set(run["config"]["code"]) == {"commit", "dirty"}  # this project is a checkout
    command = run["config"]["command"]
    assert str(out) in shlex.split(command)

    again = run_recorded(command, ROOT)  # the same command, as recorded: a new run
    assert again.returncode == 0, again.stderr
    kept = {p.name for p in (out / "previous").iterdir()}
    stem = next(n for n in kept if n.endswith(".json"))[:-len(".json")]
    assert stem.startswith("task1_lenet-")
    assert kept == {f"{stem}.json", f"{stem}.metrics.csv", f"{stem}.pt"}
    moved = json.loads((out / "previous" / f"{stem}.json").read_text())
    assert moved["config"]["started"] == run["config"]["started"]
    assert moved["final"] == run["final"]
    lines = [l for l in again.stdout.splitlines() if "previous" in l]
    assert len(lines) == 1 and "--resume" in lines[0]

    resumed = run_recorded(resume_command(Namespace(command=command)), ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resuming)" in resumed.stdout
    assert len(list((out / "previous").iterdir())) == 3  # --resume moves nothing aside


def test_keep_previous_run_never_overwrites(tmp_path):
    assert keep_previous_run(tmp_path / "run") is None
    for _ in range(2):
        (tmp_path / "run.json").write_text(json.dumps(
            {"config": {"started": "2026-12-02T09:30:00+00:00"}, "history": []}))
        (tmp_path / "run.pt").write_bytes(b"x")
        kept = keep_previous_run(tmp_path / "run")
        assert kept.is_file() and not (tmp_path / "run.json").exists()
    names = sorted(p.name for p in (tmp_path / "previous").iterdir())
    assert names == ["run-20261202-093000-2.json", "run-20261202-093000-2.pt",
                     "run-20261202-093000.json", "run-20261202-093000.pt"]
