import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from course_stopping_rule import course_stop, replay  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_stops_after_three_rises_in_a_row_only():
    assert course_stop([3, 2, 1, 1.5, 1.6, 1.7]) == 5
    # one decrease inside the last four checks resets it
    assert course_stop([3, 2, 1, 1.5, 1.4, 1.6, 1.7]) is None
    # equal losses are not a decrease (the course compared with <)
    assert course_stop([1, 1, 1, 1]) == 3
    assert course_stop([1.0, 1.1, 1.2]) is None  # fewer than four checks


def test_replay_reports_four_checks_back_and_per_epoch_checks():
    losses = [2.0, 1.5, 1.2, 1.0, 1.1, 1.3, 1.4, 1.6]
    history = [{"epoch": 0.5 * (i + 1), "val_loss": v, "val_accuracy": 0.5 + 0.01 * i}
               for i, v in enumerate(losses)]
    r = replay(history, per_epoch=False)
    assert (r["stop_epoch"], r["reported_epoch"]) == (3.5, 2.0)
    assert r["reported_val_loss"] == 1.0 and r["best_val_accuracy_so_far"] == 0.5 + 0.01 * 6
    # once an epoch: losses 1.5, 1.0, 1.3, 1.6 at epochs 1..4 -> never three rises in a row
    assert replay(history, per_epoch=True)["stop_epoch"] is None


def test_cli_prints_a_row_per_rule_and_refuses_a_missing_file(tmp_path):
    history = [{"epoch": 0.5 * (i + 1), "val_loss": v, "val_accuracy": 0.6}
               for i, v in enumerate([2.0, 1.0, 1.1, 1.2, 1.3])]
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"history": history}))
    script = str(ROOT / "scripts" / "course_stopping_rule.py")
    out = subprocess.run([sys.executable, script, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2/epoch" in out.stdout and "1/epoch" in out.stdout and "2.5" in out.stdout
    bad = subprocess.run([sys.executable, script, str(tmp_path / "none.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no saved run" in bad.stderr
