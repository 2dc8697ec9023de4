"""A user's runs never overwrite the committed evidence: in a fresh clone, the task scripts
with their default output folder (plots/), --plot-only and `report.py --own-runs` leave
`git status` clean."""
import os
import shutil
import subprocess

import pytest
from conftest import ROOT, run_script, write_image_tree

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                                reason="needs git and the project's git repository")


def git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com",
                           *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def clone_files() -> list[str]:
    """What a fresh clone of the working tree holds: every file git tracks or would add,
    nothing it ignores (data, caches, runs, a virtual environment made inside the clone)."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return list(filter(None, listed.split("\0")))


def fresh_clone(dest):
    """The working tree as a fresh clone of it would be, committed in a new repository."""
    for rel in clone_files():
        source = ROOT / rel
        if not source.is_file():  # deleted in the working tree since it was committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "clone", cwd=dest)
    assert git("status", "--porcelain", cwd=dest) == ""
    return dest


@pytest.mark.parametrize("venv", [".venv", "venv"])
def test_a_virtual_environment_in_the_clone_is_never_copied(venv):
    """README's set-up makes .venv inside the clone (gigabytes): git ignores it, so neither a
    commit nor the copies these tests make take it."""
    folder = ROOT / venv
    made = not folder.exists()
    probe = folder / "lib" / f"probe-{os.getpid()}.py"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("x = 1\n")
    try:
        assert not [f for f in clone_files() if f.startswith(f"{venv}/")]
    finally:
        probe.unlink()
        if made:
            shutil.rmtree(folder)


def test_task_runs_with_default_output_leave_git_status_clean(tmp_path):
    clone = fresh_clone(tmp_path / "clone")
    assert (clone / "plots").is_dir()  # the output folder exists in a fresh clone
    tree = write_image_tree(tmp_path / "tree")
    data = ["--data-dir", str(tree), "--epochs", "1", "--batch-size", "16", "--no-progress"]
    for argv in (["task1_lenet.py", *data], ["task2_models.py", *data],
                 ["task2_models.py", "--plot-only"], ["report.py", "--own-runs"]):
        result = run_script(*argv, cwd=clone)
        assert result.returncode == 0, (argv, result.stderr)
    assert (clone / "plots" / "task2_loss.png").is_file() and \
        (clone / "plots" / "REPORT.md").is_file()  # they did write, into plots/
    assert git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""
