"""run_all.py: the whole assignment from one command, end to end on tiny written data.

No network: the hub cache is an empty $TORCH_HOME, and the "ImageNet" weights of the Task 3
run are a freshly initialised torchvision ResNet18 saved here (so the summary must say that
the run did not start from ImageNet weights).
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import zipfile

import pytest
import torch
import torchvision
from conftest import ROOT, run_script, write_image_tree
from doccheck import broken_links

import run_all
from task3_resnet import IMAGENET_FILE, IMAGENET_URL
from training.cli import ArgumentParser, run_cli


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_image_tree(tmp_path_factory.mktemp("data") / "tree")


def summary_row(stdout: str, label: str) -> str:
    """The summary's row of one model (the summary comes after the last step)."""
    summary = stdout.split("\nSummary: ", 1)[1]
    rows = [line for line in summary.splitlines() if re.match(rf"{re.escape(label)}\s{{2,}}", line)]
    assert len(rows) == 1, summary
    return rows[0]


# No network, whatever the machine: a proxy on a closed loopback port refuses at once.
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


def test_without_weights_runs_tasks_1_2_and_the_report(tmp_path, tree):
    out = tmp_path / "out"
    hub = tmp_path / "torch-home"
    result = run_script("run_all.py", "--data-dir", str(tree), "--epochs", "1",
                        "--output-dir", str(out), "--no-progress",
                        env={"TORCH_HOME": str(hub), **OFFLINE})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    stdout = result.stdout

    # One line says Task 3 is skipped and how to give the weights; nothing else names the file
    # (but torch.hub's own notice of the download it tried).
    named = [line for line in stdout.splitlines() if IMAGENET_FILE in line
             and not line.startswith("Downloading: ")]
    assert len(named) == 1, named
    assert named[0].startswith("Task 3 skipped: no ImageNet weights for ResNet18")
    assert IMAGENET_URL in named[0] and str(hub / "hub" / "checkpoints") in named[0]
    assert "--weights PATH" in named[0] and "--skip-task3" in named[0]

    # Headers with the equivalent commands, in order, and the time of each step.
    headers = re.findall(r"^\[(\d)/(\d)\] (.*)$", stdout, flags=re.MULTILINE)
    starts = [h for h in headers if "(python " in h[2]]
    assert [(i, n) for i, n, _ in starts] == [("1", "4"), ("2", "4"), ("3", "4"), ("4", "4")]
    assert starts[0][2] == (f"Task 1: LeNet (python task1_lenet.py --data-dir {tree} --epochs 1 "
                            f"--output-dir {out} --no-progress)")
    assert starts[1][2].startswith("Task 2: Model 2.1 and Model 2.2, 10-epoch recipe (python "
                                   "task2_models.py --recipe 10-epoch --data-dir ")
    assert starts[2][2].startswith("Task 2: Model 2.1 and Model 2.2, the report's recipes "
                                   "(python task2_models.py --data-dir ")
    assert starts[3][2] == ("Report: REPORT.md from the saved runs (python report.py "
                            f"--results {out} --output-dir {out} --own-runs)")
    assert len([h for h in headers if " done in " in h[2]]) == 4

    for name in ("task1_lenet", "task2_model21", "task2_model22", "task2_model21_10ep",
                 "task2_model22_10ep"):
        assert (out / f"{name}.json").is_file(), name
    assert json.loads((out / "task2_model21_10ep.json").read_text())["config"]["augment"]
    for name in ("task1_loss.png", "task1_accuracy.png", "task2_accuracy.png", "task2_loss.png",
                 "task2_10ep_accuracy.png", "task2c_10ep_accuracy.png"):
        assert (out / name).is_file(), name
    assert not (out / "task3_resnet18.json").exists()
    report = (out / "REPORT.md").read_text()
    assert "## Missing runs" in report and "ResNet18 (Task 3)" in report.split("## Missing runs")[1]
    assert ("**Quick look.** LeNet; Model 2.1; Model 2.2; Model 2.1, 10-epoch recipe; "
            "Model 2.2, 10-epoch recipe were trained") in report  # labels that hold commas

    # Each run records its task's equivalent command (what reproduces it alone).
    lenet = json.loads((out / "task1_lenet.json").read_text())
    assert lenet["config"]["command"].startswith("python task1_lenet.py --data-dir ")

    # The summary: our test accuracy (read from the runs) beside the report's, each run of
    # fewer epochs than its task's default marked as a quick look.
    for label, name, report_acc, epochs in (("LeNet", "task1_lenet", "0.7206", 10),
                                            ("Model 2.1", "task2_model21", "0.806", 40),
                                            ("Model 2.2", "task2_model22", "0.783", 50)):
        acc = json.loads((out / f"{name}.json").read_text())["final"]["test"]["accuracy"]
        row = summary_row(stdout, label)
        quick = f"quick look (1 of {epochs} epochs)"
        assert re.fullmatch(rf"{re.escape(label)}\s+{acc:.4f}, {re.escape(quick)}\s+"
                            rf"{report_acc}", row), row
        assert f"| {acc:.4f}, *{quick}* | {report_acc} |" in report  # REPORT.md: the same runs
    assert "not comparable with the report" in stdout

    # REPORT.md is about these runs: their data, recorded commands and dates; it rebuilds.
    assert f"**Data**: every run shown trained on the image-folder tree `{tree.name}/` " \
           "(image-folder, source key `" in report
    for name in ("task1_lenet", "task2_model21", "task2_model22", "task2_model22_10ep"):
        run = json.loads((out / f"{name}.json").read_text())
        recorded = run["config"]["command"].replace(str(tree), "DATA")
        # the appendix's runs table: one row per model, its files, command, then where and when
        row = next(line for line in report.splitlines()
                   if line.startswith("| **") and f"`{name}`" in line)
        assert f"| `{recorded}` |" in row, row
        started = run["config"]["started"]
        assert f"; {started[:10]} {started[11:16]} UTC;" in row, row  # when it started
    assert "Check the citation" not in report
    assert broken_links(out / "REPORT.md") == []
    command = re.search(r"^Generated by `([^`]+)`", report, flags=re.MULTILINE).group(1)
    assert command == f"python report.py --results {out} --output-dir {out} --own-runs"
    rebuilt = run_script(*shlex.split(command)[1:])
    assert rebuilt.returncode == 0 and (out / "REPORT.md").read_text() == report
    assert "skipped: no ImageNet weights" in summary_row(stdout, "ResNet18")
    assert "0.62" in summary_row(stdout, "ResNet18")
    pdf = out / "REPORT.pdf"  # compiled where TeX is installed; else a line says how
    assert f"report: {out / 'REPORT.md'}, {out / 'REPORT.tex'}" + (
        f", {pdf}\n" if pdf.is_file() else " (no REPORT.pdf: report.py's line above") in stdout
    assert ("compiled " if pdf.is_file() else "Overleaf") in stdout
    assert re.search(r"^total time \d+m\d\ds$", stdout, flags=re.MULTILINE)

    # The code ZIP of these runs: the default folder (plots/, here absent) is not theirs,
    # and the one line says how to name theirs; --runs DIR packs them.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = run_script(str(ROOT / "submission_zip.py"), cwd=elsewhere)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1, missing.stderr
    assert "--runs DIR" in missing.stderr and "Traceback" not in missing.stderr
    packed = run_script(str(ROOT / "submission_zip.py"), "--runs", str(out), cwd=elsewhere)
    assert packed.returncode == 0, packed.stderr
    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert f"tdt4265-a3/{out.name}/REPORT.md" in zf.namelist()


def run_in_process(argv, capsys):
    """run_all as its command line runs it, in this process (so a test can patch it):
    (exit code, stdout, stderr)."""
    try:
        run_cli(run_all.main, run_all.get_args_parser(), [str(a) for a in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_failed_download_skips_task_3_before_task_1(tmp_path, tree, monkeypatch, capsys):
    """No weights in the hub cache and the download fails (as offline): one line, before
    Task 1, says Task 3 is skipped and how to give the weights; the rest runs."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    tried = []

    def offline(url, dst, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    code, out, err = run_in_process(["--data-dir", tree, "--epochs", "1", "--subset", "40",
                                     "--output-dir", tmp_path / "out", "--no-progress"], capsys)
    assert code == 0, err
    assert tried == [IMAGENET_URL]
    skipped = out.index("Task 3 skipped: no ImageNet weights for ResNet18 (not in the torch hub "
                        "cache, and the download failed: URLError: [Errno -3]")
    assert skipped < out.index("[1/4] Task 1: LeNet (python task1_lenet.py")
    assert "--weights PATH" in out.splitlines()[next(i for i, line in enumerate(out.splitlines())
                                                 if line.startswith("Task 3 skipped"))]
    assert "skipped: no ImageNet weights" in summary_row(out, "ResNet18")
    code, out, _ = run_in_process(["--data-dir", tree, "--epochs", "1", "--subset", "40",
                                   "--skip-task3", "--output-dir", tmp_path / "out2",
                                   "--no-progress"], capsys)
    assert code == 0 and tried == [IMAGENET_URL]  # on purpose: no download tried
    assert "Task 3 skipped (--skip-task3)" in out and "[1/4] Task 1" in out


def test_a_download_that_works_runs_task_3_and_its_figures(tmp_path, tree, monkeypatch, capsys):
    """The download patched to write a stand-in file (a fresh torchvision ResNet18: not the
    ImageNet file, so never called transfer learning): Task 3 and its figures run."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torch.manual_seed(0)
    stand_in = torchvision.models.resnet18().state_dict()

    def download(url, dst, *args, **kwargs):
        torch.save(stand_in, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    out = tmp_path / "out"
    code, stdout, err = run_in_process(["--data-dir", tree, "--epochs", "1", "--subset", "16",
                                        "--output-dir", out, "--no-progress"], capsys)
    assert code == 0, err
    assert "Task 3 skipped" not in stdout
    assert "[4/6] Task 3: ResNet18 transfer learning (python task3_resnet.py " in stdout
    assert "[5/6] Task 3e-3g" in stdout and "[6/6] Report" in stdout
    run = json.loads((out / "task3_resnet18.json").read_text())
    assert run["config"]["pretrained_source"] == "unverified"
    assert run["config"]["weights_file"] == str(tmp_path / "torch-home" / "hub" / "checkpoints"
                                                / IMAGENET_FILE)
    assert run["config"]["data"]["n_train"] <= 16
    for name in ("task3_accuracy.png", "task3_loss.png", "task3d_loss_comparison.png",
                 "task3e_first_layer_activations.png", "task3f_last_layer_activations.png",
                 "task3g_first_layer_filters.png", "REPORT.md"):
        assert (out / name).is_file(), name
    row = summary_row(stdout, "ResNet18")
    assert "did not start from ImageNet weights" in row and IMAGENET_FILE in row
    assert f"{run['final']['test']['accuracy']:.4f}" not in row.split("0.62")[0]
    assert re.match(r"LeNet\s+\d\.\d{4}, quick look \(--subset 16, 1 of 10 epochs\)\s+0\.7206",
                    summary_row(stdout, "LeNet"))
    # the visualisation found the fine-tuned checkpoint by itself and said which
    assert f"fine-tuned checkpoint: {out / 'task3_resnet18.pt'} (the single run)" in stdout


def test_a_missing_weights_file_stops_before_task_1(tmp_path, tree):
    missing = tmp_path / "nowhere.pth"
    result = run_script("run_all.py", "--data-dir", str(tree), "--weights", str(missing),
                        "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert str(missing) in result.stderr and "[1/" not in result.stdout


def test_resume_after_ctrl_c_in_task_2_continues_the_assignment(tmp_path):
    """A real SIGINT in Task 2; `--resume` does not run Task 1 again, resumes Task 2 from its
    last check and ends with the run files an uninterrupted run_all makes."""
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=30)
    argv = ["run_all.py", "--data-dir", str(tree), "--epochs", "3", "--skip-task3",
            "--no-progress"]
    whole = run_script(*argv, "--output-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    process = subprocess.Popen([sys.executable, *argv, "--output-dir", str(out)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "task2_model21.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.01)  # Model 2.1's first check is written: Task 2 is under way
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Resume with: python run_all.py --data-dir" in stderr and \
        stderr.strip().endswith("--resume"), stderr
    lenet = (out / "task1_lenet.json").read_bytes()
    changed = run_script(*argv, "--output-dir", str(out), "--resume", "--epochs", "2")
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1, changed.stderr
    assert "--epochs was 3" in changed.stderr
    resumed = run_script(*argv[:-1], "--output-dir", str(out), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "[1/4] Task 1: LeNet: finished before (task1_lenet.json), not run again" in \
        resumed.stdout
    assert (out / "task1_lenet.json").read_bytes() == lenet  # not run again
    assert "[2/4] Task 2: Model 2.1 and Model 2.2, 10-epoch recipe: finished before" in \
        resumed.stdout
    assert "--resume)" in resumed.stdout.split("[3/4] Task 2")[1].splitlines()[0]
    for name in ("task1_lenet", "task2_model21_10ep", "task2_model22_10ep", "task2_model21",
                 "task2_model22"):
        a = json.loads((tmp_path / "whole" / f"{name}.json").read_text())
        b = json.loads((out / f"{name}.json").read_text())
        assert b["status"] == a["status"] == "finished", name
        assert [h["step"] for h in b["history"]] == [h["step"] for h in a["history"]], name
        for x, y in zip(a["history"], b["history"]):
            assert y["val_loss"] == pytest.approx(x["val_loss"], rel=1e-5), name
        assert b["final"]["test"]["accuracy"] == a["final"]["test"]["accuracy"], name
    assert sorted(p.name for p in (tmp_path / "whole").glob("*.json")) == \
        sorted(p.name for p in out.glob("*.json"))
    # The report writes no run file: it is never "finished before", it runs after the resume.
    assert not (tmp_path / "whole" / "previous").exists() and not (out / "previous").exists()
    assert "[4/4] Report: REPORT.md from the saved runs (python report.py" in resumed.stdout
    assert (out / "REPORT.md").is_file()


def test_bad_data_dir_is_one_line_and_exit_1(tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "no-such-data"
    result = run_script("run_all.py", "--data-dir", str(missing), "--output-dir", str(out),
                        "--no-progress", env={"TORCH_HOME": str(tmp_path / "torch-home"),
                                              **OFFLINE})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and str(missing) in lines[0]
    assert "[1/4] Task 1 stopped after" in result.stdout  # it stopped at the first task
    assert "[2/4]" not in result.stdout and not (out / "REPORT.md").exists()


def test_only_the_flags_given_are_passed_on(capsys):
    parse = run_all.get_args_parser().parse_args
    with_flag = ArgumentParser()
    with_flag.add_argument("--cuda-graphs")
    with_flag.add_argument("--epochs")
    without = ArgumentParser()
    without.add_argument("--epochs")

    assert run_all.script_argv(parse([]), run_all.TRAINING_FLAGS, with_flag, "x.py") == []
    args = parse(["--cuda-graphs", "off", "--epochs", "2", "--no-progress"])
    argv = run_all.script_argv(args, run_all.TRAINING_FLAGS, with_flag, "x.py")
    assert argv == ["--cuda-graphs", "off", "--epochs", "2"]  # the parser has no --no-progress
    assert run_all.script_argv(args, run_all.TRAINING_FLAGS, without, "y.py") == ["--epochs", "2"]
    assert "note: y.py has no --cuda-graphs; not passed to it" in capsys.readouterr().out


def test_readmes_first_command_is_the_quick_look_and_runs_offline_as_written(tmp_path, tree):
    """README's Quick start opens with the quick look, offline form (a local copy, no Task 3);
    run as written from a fresh folder, on the tiny tree for one epoch, it finishes, writes
    plots/ with its report, and says its numbers are a quick look."""
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL).group(1).strip()
    assert "\n" not in block, block  # one command
    assert re.search(r"```", readme.split("\n## Quick start\n", 1)[0].split("\n## Install\n")[0]) \
        is None  # nothing to type before Install
    args = shlex.split(block)
    assert args[:2] == ["python", "run_all.py"], block
    assert args[args.index("--subset") + 1] == "2000" and args[args.index("--epochs") + 1] == "2"
    assert "--skip-task3" in args and args[args.index("--data-dir") + 1] == "PATH"
    args[args.index("--data-dir") + 1] = str(tree)
    args[args.index("--epochs") + 1] = "1"
    result = run_script(str(ROOT / "run_all.py"), *args[2:], cwd=tmp_path,
                        env={"TORCH_HOME": str(tmp_path / "torch-home"), **OFFLINE})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "plots" / "REPORT.md").is_file()
    assert not (tmp_path / "plots" / "task3_resnet18.json").exists()
    assert "quick look" in summary_row(result.stdout, "LeNet")
