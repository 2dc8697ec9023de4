"""run_all.py: the whole assignment from one command, end to end on tiny written data.

No network: the hub cache is an empty $TORCH_HOME, and the "ImageNet" weights of the Task 3
run are a freshly initialised torchvision ResNet18 saved here (so the summary must say that
the run did not start from ImageNet weights).
"""
import json
import re
import shlex

import pytest
import torch
import torchvision

import run_all
from cli import ArgumentParser
from conftest import run_script, write_image_tree
from doccheck import broken_links
from task3_resnet import IMAGENET_FILE, IMAGENET_URL


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_image_tree(tmp_path_factory.mktemp("data") / "tree")


def summary_row(stdout: str, label: str) -> str:
    """The summary's row of one model (the summary comes after the last step)."""
    summary = stdout.split("\nSummary: ", 1)[1]
    rows = [line for line in summary.splitlines() if re.match(rf"{re.escape(label)}\s{{2,}}", line)]
    assert len(rows) == 1, summary
    return rows[0]


def test_without_weights_runs_tasks_1_2_and_the_report(tmp_path, tree):
    out = tmp_path / "out"
    hub = tmp_path / "torch-home"
    result = run_script("run_all.py", "--data-dir", str(tree), "--epochs", "1",
                        "--output-dir", str(out), "--no-progress",
                        env={"TORCH_HOME": str(hub)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    stdout = result.stdout

    # One line says Task 3 is skipped and how to give the weights; nothing else names the file.
    named = [line for line in stdout.splitlines() if IMAGENET_FILE in line]
    assert len(named) == 1, named
    assert named[0].startswith("Task 3 skipped: no ImageNet weights for ResNet18")
    assert IMAGENET_URL in named[0] and str(hub / "hub" / "checkpoints") in named[0]
    assert "--weights PATH" in named[0]

    # Headers with the equivalent commands, in order, and the time of each step.
    headers = re.findall(r"^\[(\d)/(\d)\] (.*)$", stdout, flags=re.M)
    starts = [h for h in headers if "(python " in h[2]]
    assert [(i, n) for i, n, _ in starts] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert starts[0][2] == (f"Task 1: LeNet (python task1_lenet.py --data-dir {tree} --epochs 1 "
                            f"--output-dir {out} --no-progress)")
    assert starts[1][2].startswith("Task 2: Model 2.1 and Model 2.2 (python task2_models.py ")
    assert starts[2][2] == ("Report: REPORT.md from the saved runs (python report.py "
                            f"--results {out} --output-dir {out} --own-runs)")
    assert len([h for h in headers if " done in " in h[2]]) == 3

    for name in ("task1_lenet", "task2_model21", "task2_model22"):
        assert (out / f"{name}.json").is_file(), name
    for name in ("task1_loss.png", "task1_accuracy.png", "task2_accuracy.png", "task2_loss.png"):
        assert (out / name).is_file(), name
    assert not (out / "task3_resnet18.json").exists()
    report = (out / "REPORT.md").read_text()
    assert "## Missing runs" in report and "ResNet18 (Task 3)" in report.split("## Missing runs")[1]

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
    for name in ("task1_lenet", "task2_model21", "task2_model22"):
        run = json.loads((out / f"{name}.json").read_text())
        recorded = run["config"]["command"].replace(str(tree), "DATA")
        row = next(line for line in report.splitlines() if f"| `{name}` |" in line)
        assert f"| `{recorded}` |" in row, row
        started = run["config"]["started"]
        assert f"| {started[:10]} {started[11:16]} UTC |" in row, row  # when it started
    assert "Check the citation" not in report
    assert broken_links(out / "REPORT.md") == []
    command = re.search(r"^Generated by `([^`]+)`", report, flags=re.M).group(1)
    assert command == f"python report.py --results {out} --output-dir {out} --own-runs"
    rebuilt = run_script(*shlex.split(command)[1:])
    assert rebuilt.returncode == 0 and (out / "REPORT.md").read_text() == report
    assert "skipped: no ImageNet weights" in summary_row(stdout, "ResNet18")
    assert "0.62" in summary_row(stdout, "ResNet18")
    assert f"report: {out / 'REPORT.md'}" in stdout
    assert re.search(r"^total time \d+m\d\ds$", stdout, flags=re.M)


def test_with_weights_runs_task3_and_its_figures(tmp_path, tree):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    out = tmp_path / "out"
    result = run_script("run_all.py", "--data-dir", str(tree), "--epochs", "1", "--subset", "16",
                        "--weights", str(weights), "--output-dir", str(out), "--no-progress",
                        env={"TORCH_HOME": str(tmp_path / "torch-home")})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    stdout = result.stdout
    assert "Task 3 skipped" not in stdout
    assert "[3/5] Task 3: ResNet18 transfer learning (python task3_resnet.py " in stdout
    assert f"--subset 16 --epochs 1 --output-dir {out} --no-progress --weights {weights})" in stdout
    assert "[4/5] Task 3e-3g" in stdout and "[5/5] Report" in stdout

    run = json.loads((out / "task3_resnet18.json").read_text())
    assert run["config"]["pretrained_source"] == "unverified"
    assert run["config"]["data"]["n_train"] <= 16
    for name in ("task3_accuracy.png", "task3_loss.png", "task3d_loss_comparison.png",
                 "task3e_first_layer_activations.png", "task3f_last_layer_activations.png",
                 "task3g_first_layer_filters.png", "REPORT.md"):
        assert (out / name).is_file(), name
    row = summary_row(stdout, "ResNet18")
    assert "did not start from ImageNet weights" in row and weights.name in row
    assert f"{run['final']['test']['accuracy']:.4f}" not in row.split("0.62")[0]
    assert re.match(r"LeNet\s+\d\.\d{4}, quick look \(--subset 16, 1 of 10 epochs\)\s+0\.7206",
                    summary_row(stdout, "LeNet"))
    assert "not comparable with the report" in stdout  # --subset/--epochs: a quick look
    # the visualisation found the fine-tuned checkpoint by itself and said which
    assert f"fine-tuned checkpoint: {out / 'task3_resnet18.pt'} (the single run)" in stdout


def test_bad_data_dir_is_one_line_and_exit_1(tmp_path):
    out = tmp_path / "out"
    missing = tmp_path / "no-such-data"
    result = run_script("run_all.py", "--data-dir", str(missing), "--output-dir", str(out),
                        "--no-progress", env={"TORCH_HOME": str(tmp_path / "torch-home")})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and str(missing) in lines[0]
    assert "[1/3] Task 1 stopped after" in result.stdout  # it stopped at the first task
    assert "[2/3]" not in result.stdout and not (out / "REPORT.md").exists()


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
