import json
import sys
from pathlib import Path

import pytest
from conftest import run_script

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from stopping_replay import (
    History,
    Rule,
    build_markdown,
    candidate_rules,
    collect,
    course_stop,
    earliest_holding,
    judge,
    replay,
    replay_model,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "scripts/stopping_replay.py"
MODEL21_40EP = ROOT / "results" / "h200-2026-11-27" / "model21-40ep"


def checks(accs, losses=None):
    losses = losses or [2.0 - a for a in accs]
    return [{"epoch": 0.5 * (i + 1), "val_loss": l, "val_accuracy": a}
            for i, (a, l) in enumerate(zip(accs, losses))]


def late_peak():
    """Val accuracy rises to 0.70 at check 5, sits 12 checks below it, then peaks at 0.75
    (check 18) and falls back: 30 checks in all."""
    return checks([0.40, 0.50, 0.60, 0.65, 0.68, 0.70] + [0.69] * 12 + [0.75] + [0.72] * 11)


def patience(metric, p):
    return next(r for r in candidate_rules() if r.metric == metric and r.patience == p
                and not r.course)


def write_run(path, history, status="finished", model="model21"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": {"model": model}, "status": status,
                                "history": history}))
    return path


# --------------------------------------------------------------------------- the rules
def test_late_peak_after_a_12_check_plateau_patience_10_fails_16_holds():
    h = History("late", "model21", "finished", late_peak())
    p10 = judge(h, patience("val_accuracy", 10))
    assert (p10.stop_epoch, p10.kept_epoch, p10.kept_acc) == (8.0, 3.0, 0.70)
    assert p10.delta == pytest.approx(-0.05) and p10.holds is False
    p12 = judge(h, patience("val_accuracy", 12))
    assert (p12.stop_epoch, p12.holds) == (9.0, False)  # 12 checks without a new best
    p16 = judge(h, patience("val_accuracy", 16))
    assert (p16.stop_epoch, p16.kept_epoch, p16.kept_acc, p16.holds) == (15.0, 9.5, 0.75, True)
    assert p16.delta == 0 and p16.delta_max == 0
    results = replay_model([h])
    best = earliest_holding(results, "val_accuracy")
    assert best.rule.name == "val_accuracy, patience 16" and best.mean_stop == 15.0


def test_tolerance_decides_holds_and_delta_to_highest_accuracy_is_reported():
    # val loss is lowest at check 2 (acc 0.60); the highest accuracy (0.62) comes later
    h = History("x", "model22", "finished",
                checks([0.50, 0.55, 0.60, 0.598, 0.62, 0.61],
                       [1.5, 1.2, 1.0, 1.1, 1.3, 1.4]))
    o = judge(h, Rule("val_loss, no early stopping", "val_loss", None))
    assert (o.kept_epoch, o.delta, o.holds) == (1.5, 0, True)
    assert o.delta_max == pytest.approx(-0.02)
    # patience 1 on val_accuracy stops at check 3 keeping 0.60; whole best 0.62: fails
    o = judge(h, Rule("val_accuracy, patience 1", "val_accuracy", 1))
    assert (o.stop_epoch, o.kept_acc, o.holds) == (2.0, 0.60, False)
    assert judge(h, Rule("a", "val_accuracy", 1), tolerance=0.021).holds is True


def test_truncated_history_is_information_only_and_never_chooses():
    truncated = History("cut", "model21", "early_stopped", late_peak()[:14])
    o = judge(truncated, patience("val_accuracy", 4))   # stops within the recorded checks
    assert (o.stop_epoch, o.kept_epoch, o.kept_acc) == (5.0, 3.0, 0.70)
    assert o.delta is None and o.delta_max is None and o.holds is None
    o = judge(truncated, patience("val_accuracy", 16))  # would stop after the recorded end
    assert o.stop_epoch is None and o.holds is None
    full = History("full", "model21", "finished", late_peak())
    results = replay_model([truncated, full])
    p10 = next(r for r in results if r.rule.name == "val_accuracy, patience 10")
    assert p10.holds_on_full is False and p10.mean_stop == 8.0  # the full history only
    assert replay_model([truncated])[0].holds_on_full is None
    text = build_markdown([truncated])
    assert "none can be chosen (no full history)" in text
    assert "does not stop before the run's end" in text


def test_a_subset_run_is_listed_but_never_judged(tmp_path):
    path = write_run(tmp_path / "smoke.json", late_peak())
    run = json.loads(path.read_text())
    run["config"]["args"] = {"subset": 3000}
    path.write_text(json.dumps(run))
    [h] = collect([str(path)])
    assert h.subset == 3000 and not h.full
    assert judge(h, patience("val_accuracy", 16)).holds is None
    assert "(--subset 3000: a quick look, not judged)" in build_markdown([h])


def test_nan_is_never_a_new_best():
    h = History("nan", "model21", "finished",
                checks([0.5, 0.6, float("nan"), 0.55], [1.0, 0.9, float("nan"), 0.95]))
    stop, kept = replay(h.history, Rule("", "val_loss", 2))
    assert (stop, kept) == (3, 1)


# --------------------------------------------------------------------------- the course rule
def test_stops_after_three_rises_in_a_row_only():
    assert course_stop([3, 2, 1, 1.5, 1.6, 1.7]) == 5
    # one decrease inside the last four checks resets it
    assert course_stop([3, 2, 1, 1.5, 1.4, 1.6, 1.7]) is None
    # equal losses are not a decrease (the course compared with <)
    assert course_stop([1, 1, 1, 1]) == 3
    assert course_stop([1.0, 1.1, 1.2]) is None  # fewer than four checks


def test_course_rule_reports_four_checks_back_and_per_epoch_checks():
    losses = [2.0, 1.5, 1.2, 1.0, 1.1, 1.3, 1.4, 1.6]
    history = [{"epoch": 0.5 * (i + 1), "val_loss": v, "val_accuracy": 0.5 + 0.01 * i}
               for i, v in enumerate(losses)]
    two, one = [r for r in candidate_rules() if r.course]
    assert not two.per_epoch and one.per_epoch
    truncated = History("t", "m", "early_stopped", history)
    o = judge(truncated, two)
    assert (o.stop_epoch, o.kept_epoch) == (3.5, 2.0)
    _stop, kept = replay(history, two)
    assert history[kept]["val_loss"] == 1.0 and o.kept_acc == 0.5 + 0.01 * 3
    # once an epoch: losses 1.5, 1.0, 1.3, 1.6 at epochs 1..4 -> never three rises in a row
    assert replay(history, one)[0] is None and judge(truncated, one).stop_epoch is None
    # on a full history a rule that never fires runs to the end and reports 4 checks back
    o = judge(History("f", "m", "finished", history), one)
    assert (o.stop_epoch, o.kept_epoch) == (4.0, 1.0)


# --------------------------------------------------------------------------- command line
def test_cli_prints_tables_and_writes_markdown(tmp_path):
    write_run(tmp_path / "runs" / "a" / "task2_model21_seed0.json", late_peak())
    write_run(tmp_path / "runs" / "b" / "task2_model21.json", late_peak()[:14], "early_stopped")
    write_run(tmp_path / "runs" / "lenet.json", checks([0.5, 0.6, 0.7]), model="lenet")
    (tmp_path / "runs" / "benchmark.json").write_text(json.dumps({"models": {}}))
    md = tmp_path / "out" / "replay.md"
    out = run_script(SCRIPT, str(tmp_path / "runs"), "--model", "model21", "--markdown", str(md))
    assert out.returncode == 0, out.stderr
    assert "### Model 2.1 (`model21`): 2 histories, 1 full" in out.stdout
    assert "`a/task2_model21_seed0`" in out.stdout and "LeNet" not in out.stdout
    row = next(line for line in out.stdout.splitlines()
               if line.startswith("| val_accuracy, patience 16 |"))
    assert row == ("| val_accuracy, patience 16 | 15.0 / 9.5: 0.7500 / +0.0000 / +0.0000 / yes | "
                   "does not stop before the run's end | yes | 15.0 |")
    assert "by val_accuracy: **val_accuracy, patience 16**" in out.stdout
    assert md.read_text() in out.stdout and "| course rule, checks 1/epoch |" in md.read_text()
    every = run_script(SCRIPT, str(tmp_path / "runs"))
    assert every.returncode == 0 and "### LeNet (`lenet`)" in every.stdout


@pytest.mark.parametrize("case", ["empty folder", "not a run", "missing", "no such model"])
def test_cli_errors_are_one_line(tmp_path, case):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bench.json").write_text(json.dumps({"models": {}}))
    write_run(tmp_path / "run.json", late_peak())
    args, expected = {
        "empty folder": ([str(tmp_path / "empty")], "no run JSON files under"),
        "not a run": ([str(tmp_path / "bench.json")], "has no 'history'"),
        "missing": ([str(tmp_path / "none.json")], "no saved run"),
        "no such model": ([str(tmp_path / "run.json"), "--model", "model22"],
                          "no runs of model22"),
    }[case]
    bad = run_script(SCRIPT, *args)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and expected in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stderr.startswith("error: ")


# --------------------------------------------------------------------------- the GPU runs
def test_model21_40_epoch_gpu_runs_patience_10_fails_16_holds():
    """The three 40-epoch Model 2.1 histories (H200, seeds 0-2, no early stopping): the
    default rule (val_accuracy, patience 10) stops at 20.5, 21.5, 14.5 keeping 0.763, 0.759,
    0.754; patience 16 or more keeps the 40-epoch best, 0.774, 0.774, 0.773."""
    histories = collect([str(MODEL21_40EP)])
    assert [h.label for h in histories] == [f"task2_model21_seed{s}" for s in range(3)]
    assert all(h.full and h.model == "model21" and len(h.history) == 80 for h in histories)
    results = {r.rule.name: r for r in replay_model(histories)}
    p10 = results["val_accuracy, patience 10"]
    assert p10.holds_on_full is False
    assert [round(o.stop_epoch, 1) for o in p10.outcomes] == [20.5, 21.5, 14.5]
    assert [round(o.kept_acc, 3) for o in p10.outcomes] == [0.763, 0.759, 0.754]
    assert not any(o.holds for o in p10.outcomes)
    for p in (4, 6, 8, 12):
        assert results[f"val_accuracy, patience {p}"].holds_on_full is False
    for name in ("val_accuracy, patience 16", "val_accuracy, patience 20",
                 "val_accuracy, no early stopping"):
        r = results[name]
        assert r.holds_on_full is True
        assert [round(o.kept_acc, 3) for o in r.outcomes] == [0.774, 0.774, 0.773]
        assert all(o.delta == 0 and o.delta_max == 0 for o in r.outcomes)
    assert earliest_holding(list(results.values()), "val_accuracy").rule.name == \
        "val_accuracy, patience 16"


def test_an_experiment_run_is_listed_but_never_judged(tmp_path):
    """Task 2e's 10-epoch runs record a default of 10 epochs; they are not full histories of
    their model's default recipe all the same."""
    path = write_run(tmp_path / "lenet-bn_seed0.json", late_peak())
    run = json.loads(path.read_text())
    run["config"].update(default_epochs=10, experiment={"variant": "lenet-bn",
                                                        "baseline": "lenet"})
    path.write_text(json.dumps(run))
    [h] = collect([str(path)])
    assert not h.full and judge(h, patience("val_accuracy", 16)).holds is None
    assert "(Task 2e experiment lenet-bn, not judged)" in build_markdown([h])
