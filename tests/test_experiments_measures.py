"""Task 2e's measures and verdicts (reporting/task2e.py), checked by hand on planted runs: the one
standard deviation, Student's t without scipy, roughness, the pairing within one seed (within
one setting: test_experiments_settings.py), the half-widths and Holm's correction, the facts
in words, runs read from several folders, the report's 2e section, and its gains figure."""
import ast
import dataclasses
import json
import math
import re

import pytest
from conftest import ROOT, typed

from reporting import task2e
from reporting.paired import ALPHA, holm, incomplete_beta, paired, t975, t_cdf, t_two_sided_p
from reporting.table import Table
from reporting.task2e import (
    GAIN,
    HALF,
    MEASURES,
    P_VALUE,
    ROUGHNESS,
    Arm,
    facts,
    measures,
    ranked_table,
    read_experiments,
    roughness,
)
from training import record
from training.errors import UserError
from training.record import mean_std

ONE_THREAD = "cpu, bf16, 1 thread"


# --------------------------------------------------------------------------- one std
def test_the_one_standard_deviation_is_the_sample_one():
    assert mean_std([1, 2, 3, 4])[1] == pytest.approx(1.2910, abs=5e-5)
    assert mean_std([0.5])[1] == 0.0
    assert "sample standard deviation" in record.mean_std.__doc__
    assert mean_std([1, 2, 3, 4]) == pytest.approx((2.5, 1.2910), abs=5e-5)
    from training.record import format_mean_std
    assert format_mean_std([1, 2, 3, 4], 4) == "2.5000 ± 1.2910"
    assert record.spread_note([3, 1]) == "Mean ± sample standard deviation over 3 seeds."


STD_NAMES = {"std", "nanstd", "var", "nanvar", "pstdev", "pvariance", "stdev", "variance"}


def std_calls(source: str) -> list[str]:
    """Calls in `source` that compute a standard deviation or variance other than through
    training.record.mean_std: numpy's (or a tensor's) std/var without ddof=1, and the statistics
    module's, each as 'line N: name'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in STD_NAMES:
            continue
        ddof = next((k.value for k in node.keywords if k.arg == "ddof"), None)
        if isinstance(ddof, ast.Constant) and ddof.value == 1 and name in ("std", "nanstd"):
            continue
        found.append(f"line {node.lineno}: {name}")
    return found


def test_the_scan_finds_a_default_ddof_std():
    assert std_calls("import numpy as np\nnp.std([1, 2])\nx.std()\n") == [
        "line 2: std", "line 3: std"]
    assert std_calls("from statistics import pstdev\npstdev([1, 2])\n") == ["line 2: pstdev"]
    assert std_calls("np.std(v, ddof=1)\nsample_std(v)\n") == []


@pytest.mark.parametrize("path", sorted([*ROOT.glob("*.py"), *ROOT.glob("scripts/*.py"),
                                         *ROOT.glob("training/*.py"),
                                         *ROOT.glob("reporting/*.py")]),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_module_computes_another_standard_deviation(path):
    assert std_calls(path.read_text()) == []


# --------------------------------------------------------------------------- Student's t
def test_students_t_against_known_values():
    assert incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)
    assert incomplete_beta(2.5, 2.5, 0.5) == pytest.approx(0.5)
    assert t_cdf(1.0, 1) == pytest.approx(0.75)          # Cauchy: 1/2 + atan(1)/pi
    assert t_cdf(0.0, 7) == pytest.approx(0.5)
    assert t_cdf(2.0, 2) == pytest.approx(0.5 + 2 / (2 * math.sqrt(6)))  # df 2, closed form
    assert t_cdf(-2.0, 2) == pytest.approx(0.5 - 2 / (2 * math.sqrt(6)))
    # the tables' 0.975 quantiles
    for df, q in ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert t975(df) == pytest.approx(q, abs=5e-4), df
    assert t_two_sided_p(2.776445, 4) == pytest.approx(0.05, abs=1e-6)
    assert t_two_sided_p(2.0, 200) == pytest.approx(0.0469, abs=2e-4)  # near the normal's


# --------------------------------------------------------------------------- roughness
def history(epochs, losses, accs=None):
    accs = accs or [0.5] * len(epochs)
    return [{"epoch": e, "step": i + 1, "train_loss": 1.0, "val_loss": loss,
             "val_accuracy": a, "test_accuracy": a - 0.01, "test_loss": loss}
            for i, (e, loss, a) in enumerate(zip(epochs, losses, accs))]


def test_roughness_of_a_falling_curve_is_zero_however_fast():
    epochs = [0.4993 * k for k in range(1, 21)]
    assert roughness(history(epochs, [2.0 - 0.09 * k for k in range(20)])) == 0
    assert roughness(history(epochs, [2.0 - 0.01 * k for k in range(20)])) == 0


def test_roughness_of_a_zig_zag_is_its_rises_per_epoch_from_the_first_check():
    # LeNet's first check falls at 351/703 = 0.4993 of an epoch: it counts.
    epochs = [0.4993, 1.0, 1.5, 2.0, 2.5, 3.0]
    losses = [1.0, 1.2, 0.9, 1.0, 0.7, 0.75]  # rises 0.2, 0.1, 0.05
    assert roughness(history(epochs, losses)) == pytest.approx(0.35 / (3.0 - 0.4993))
    # checks after the 10-epoch budget are not counted
    late = history([0.5, 1.0, 10.0, 10.5], [1.0, 0.9, 0.8, 5.0])
    assert roughness(late) == 0
    assert roughness(history([0.5], [1.0])) is None


def test_roughness_is_defined_once_and_the_tables_say_that_definition():
    assert MEASURES["roughness"].label is ROUGHNESS
    runs = planted_runs({"lenet": [0.6, 0.7, 0.65], "lenet-dropout": [0.61, 0.71, 0.66]})
    variants = [Arm("lenet", None, "", "ladder"), Arm("lenet-dropout", "lenet", "d", "ladder")]
    assert any(ROUGHNESS in note for note in task2e.speed_table(variants, runs).notes)
    assert any(ROUGHNESS in note for note in task2e.claims_table(runs).notes)


def test_a_run_that_read_the_test_split_only_at_the_end_gives_the_same_measures():
    losses = [2.0, 1.5, 1.2, 1.3, 1.25, 1.4]  # the best validation loss at the third check
    full = history([0.5 * k for k in range(1, 7)], losses, [0.3, 0.4, 0.5, 0.45, 0.5, 0.44])
    for check, acc in zip(full, (0.2, 0.3, 0.47, 0.41, 0.46, 0.43)):
        check["test_accuracy"] = acc
    grid = [{**check, "test_accuracy": None} for check in full[:-1]] + [full[-1]]
    final = {"test": {"accuracy": 0.47}, "best_epoch": 1.5}
    a, b = map(measures, typed({"config": {}, "history": full, "final": final},
                               {"config": {}, "history": grid, "final": final}))
    assert a == b and a["test_acc"] == 0.47
    # a final evaluation of other weights than the best check's is not taken for it
    assert measures(*typed({"config": {}, "history": grid,
                            "final": {**final, "best_epoch": 3.0}}))["test_acc"] is None


# --------------------------------------------------------------------------- pairing
def measured(test_acc, setting=ONE_THREAD, **extra):
    return {"test_acc": test_acc, "val_acc_2": test_acc, "val_acc_5": test_acc,
            "first_070": None, "roughness": 0.0, "test_acc_10": test_acc, "parameters": 10,
            "train_s": 60.0, "status": "finished", "setting": setting, **extra}


def planted_runs(accs: dict[str, list[float]]) -> dict[str, dict[int, dict]]:
    return {name: {seed: measured(a) for seed, a in enumerate(values)}
            for name, values in accs.items()}


def run_file(folder, variant, seed, test_acc, threads=1, baseline="lenet", model="lenet",
             cpu=None, resumed_on=None, val_acc=None):
    """A finished experiment run whose best-validation check has test accuracy `test_acc`
    (and every check validation accuracy `val_acc`, 0.5 unless given)."""
    folder.mkdir(parents=True, exist_ok=True)
    checks = history([0.5 * k for k in range(1, 21)], [2.0 - 0.05 * k for k in range(20)],
                     [val_acc] * 20 if val_acc else None)
    for check in checks:
        check["test_accuracy"] = test_acc if check is checks[-1] else 0.1
    data = {"config": {"seed": seed, "model": model, "device": "cpu", "precision": "bf16",
                       "environment": {"threads": threads, **({"cpu": cpu} if cpu else {})},
                       **({"resumed_on": resumed_on} if resumed_on else {}),
                       "stop_metric": "val_loss",
                       "parameters": 10,
                       "experiment": {"variant": variant,
                                      "baseline": None if variant == baseline else baseline,
                                      "changes": f"{variant}'s change"}},
            "history": checks, "status": "finished", "timings": {"train_s": 60.0},
            "final": {"test": {"accuracy": test_acc}, "best_epoch": 10.0}}
    path = folder / f"{variant}_seed{seed}.json"
    path.write_text(json.dumps(data))
    return path


def test_each_variant_is_paired_with_its_baseline_of_the_same_seed(tmp_path):
    # Seeds differ a lot, the change adds exactly one point to each: pairing seed with seed
    # gives +0.01 every time; pairing with another seed's baseline would not.
    base = {0: 0.60, 1: 0.70, 2: 0.65, 3: 0.55}
    for seed, acc in base.items():
        run_file(tmp_path, "lenet", seed, acc)
        run_file(tmp_path, "lenet-bn", seed, acc + 0.01)
    runs, _ = read_experiments(tmp_path)
    gain = paired(runs, "lenet-bn", "lenet", "test_acc")
    assert gain.seeds == (0, 1, 2, 3)
    assert gain.diffs == pytest.approx((0.01,) * 4)
    assert gain.half_width == pytest.approx(0, abs=1e-9) and gain.sign() == 1


def test_runs_from_several_folders_and_a_run_made_twice(tmp_path):
    first, second = tmp_path / "a" / "experiments", tmp_path / "b" / "experiments"
    for seed in (0, 1):
        run_file(first, "lenet", seed, 0.6 + 0.01 * seed)
        run_file(first, "lenet-bn", seed, 0.62 + 0.01 * seed)
    for seed in (2, 3):
        run_file(second, "lenet", seed, 0.6 + 0.01 * seed)
        run_file(second, "lenet-bn", seed, 0.62 + 0.01 * seed)
    runs, _variants = read_experiments([first, second, tmp_path / "not-made-yet"])
    assert {name: sorted(seeds) for name, seeds in runs.items()} == {
        "lenet": [0, 1, 2, 3], "lenet-bn": [0, 1, 2, 3]}
    assert paired(runs, "lenet-bn", "lenet", "test_acc").n == 4
    twice = run_file(second, "lenet-bn", 1, 0.7)
    with pytest.raises(UserError) as err:
        read_experiments([first, second])
    assert str(first / "lenet-bn_seed1.json") in str(err.value) and str(twice) in str(err.value)


def test_the_report_reads_every_committed_experiments_folder(tmp_path):
    from reporting.cited import CITED, EXPERIMENTS, TASK_OUTPUT_RUNS, experiments_folders
    assert len(EXPERIMENTS) >= 3
    (tmp_path / EXPERIMENTS[0]).mkdir(parents=True)
    (tmp_path / EXPERIMENTS[1]).mkdir(parents=True)
    assert experiments_folders(tmp_path, CITED) == [tmp_path / f for f in EXPERIMENTS[:2]]
    assert experiments_folders(tmp_path, CITED, existing=False) == [
        tmp_path / f for f in EXPERIMENTS]
    assert experiments_folders(tmp_path, TASK_OUTPUT_RUNS) == []


# --------------------------------------------------------------------------- verdicts
def df2_half_width(alpha, se):
    """Student's t with 2 degrees of freedom has a closed form: F(t) = 1/2 + t/(2 √(2 + t²)),
    so the two-sided (1 - alpha) quantile is u √2 / √(1 - u²), u = 1 - alpha."""
    u = 1 - alpha
    return u * math.sqrt(2) / math.sqrt(1 - u * u) * se


def df2_p(t):
    return 1 - abs(t) / math.sqrt(2 + t * t)


def small_ladder():
    """Three changes at 3 seeds on one baseline, their differences chosen by hand:
    a +0.03 (sd 0.01), b +0.01 (sd 0.01), c -0.031 (sd 0.001)."""
    base = [0.60, 0.70, 0.65]
    diffs = {"a": (0.02, 0.03, 0.04), "b": (0.02, 0.00, 0.01), "c": (-0.030, -0.031, -0.032)}
    runs = {"lenet": {s: measured(acc) for s, acc in enumerate(base)}}
    for name, d in diffs.items():
        runs[name] = {s: measured(base[s] + d[s]) for s in range(3)}
    variants = [Arm("lenet", None, "", "ladder")] + [
        Arm(name, "lenet", f"change {name}", "ladder") for name in diffs]
    return runs, variants


def test_half_widths_and_holms_verdicts_by_hand():
    runs, variants = small_ladder()
    se = {"a": 0.01 / math.sqrt(3), "b": 0.01 / math.sqrt(3), "c": 0.001 / math.sqrt(3)}
    mean = {"a": 0.03, "b": 0.01, "c": -0.031}
    p = {name: df2_p(mean[name] / se[name]) for name in mean}
    assert p["c"] < 0.001 and 0.025 < p["a"] < 0.05 and p["b"] > 0.2
    for name in mean:
        gain = paired(runs, name, "lenet", "test_acc")
        assert gain.p_value == pytest.approx(p[name], rel=1e-6)
        assert gain.half_width == pytest.approx(df2_half_width(ALPHA, se[name]), rel=1e-6)
    # Holm, 3 tests: c at 0.05/3 (called), then a at 0.05/2 (p ~0.035: not called, although
    # its own 95 % interval leaves out 0), then b at 0.05 (after a failure, not called).
    assert holm(p) == pytest.approx({"c": 3 * p["c"], "a": 2 * p["a"], "b": p["b"]})
    table = ranked_table(variants, runs, "ladder", "t")
    rows = {row[0]: dict(zip(table.header, row)) for row in table.rows}
    assert table.column("variant") == ["a", "b", "c"]
    assert rows["c"]["verdict"] == "worse"
    assert paired(runs, "a", "lenet", "test_acc").sign() == 1  # uncorrected: better
    x_a = 100 * df2_half_width(ALPHA / 2, se["a"])             # its Holm level, 0.025
    x_b = 100 * df2_half_width(ALPHA, se["b"])
    assert rows["a"]["verdict"] == f"not distinguishable: smaller than {x_a:.2f} points, if any"
    assert rows["b"]["verdict"] == f"not distinguishable: smaller than {x_b:.2f} points, if any"
    assert f"{x_a:.2f}" == "3.58" and f"{x_b:.2f}" == "2.48"
    assert rows["a"][HALF] == f"{100 * df2_half_width(ALPHA, se['a']):.2f}" == "2.48"
    assert rows["c"][HALF] == "0.25"
    assert rows["a"][GAIN] == "+3.00 [+0.52, +5.48]"
    assert rows["a"][P_VALUE] == f"{p['a']:.3f}; Holm {2 * p['a']:.3f}"
    assert any("Holm's step-down" in n and "3 changes" in n for n in table.notes)
    # the report's own models: each row's own 95 % interval, no correction
    report = [Arm("lenet", None, "", "report")] + [dataclasses.replace(v, group="report")
                                                  for v in variants[1:]]
    table = ranked_table(report, runs, "report", "t")
    assert dict(zip(table.column("variant"), table.column("verdict")))["a"] == "better"
    assert any("not corrected" in n for n in table.notes)


def test_a_row_with_one_seed_has_no_interval_and_is_left_out_of_holms_family():
    runs, variants = small_ladder()
    runs["d"] = {0: measured(0.9)}
    variants.append(Arm("d", "lenet", "change d", "ladder"))
    table = ranked_table(variants, runs, "ladder", "t")
    row = dict(zip(table.header, table.rows[0]))
    assert row["variant"] == "d" and row["verdict"] == "one seed: no interval"
    assert row[HALF] is None and row[P_VALUE] is None
    assert any("3 changes" in n for n in table.notes)


# --------------------------------------------------------------------------- in words
def test_the_facts_are_read_from_the_tables_in_their_order():
    runs, variants = small_ladder()
    for name, gain in (("e", 0.05), ("f", 0.04)):  # two clear gains
        runs[name] = {s: measured(runs["lenet"][s]["test_acc"] + gain + 0.0001 * s)
                      for s in range(3)}
        variants.append(Arm(name, "lenet", f"change {name}", "ladder"))
    ladder = ranked_table(variants, runs, "ladder", "t")
    claims = task2e.claims_table(runs)
    said = facts(ladder, claims)
    assert 3 <= len(said) <= 5
    assert said[0] == "The baseline, lenet: test accuracy 0.6500 (mean over 3 seeds; " \
                      f"{ONE_THREAD})."
    assert said[1].startswith("Helped most: e (change e), +5.01 points [95 % interval")
    assert said[2].startswith("Hurt: c (change c), -3.10 points")
    assert said[1].endswith("; also better: f.")
    # five tests now: e, f and c first, a fourth, at 0.05 / (5 - 4 + 1)
    x_a = f"{100 * df2_half_width(ALPHA / 2, 0.01 / math.sqrt(3)):.2f}"
    assert f"a (+3.00 points: smaller than {x_a} points, if any)" in said[3]
    assert said[4].startswith("The original report's claims, in 14 comparisons: ")
    for sentence in said[1:4]:  # every number is a cell of the table
        for number in re.findall(r"[-+]?\d+\.\d+", sentence):
            assert any(number in (c or "") for row in ladder.rows for c in row) or \
                number in " ".join(ladder.notes), number
    # the same table in another order says other things
    shuffled = Table(ladder.header, list(reversed(ladder.rows)), ladder.title, ladder.notes)
    assert facts(shuffled, claims) != said
    swapped = Table(ladder.header, [ladder.rows[1], ladder.rows[0], *ladder.rows[2:]],
                    ladder.title, ladder.notes)
    assert facts(swapped, claims)[1].startswith("Helped most: f (change f), +4.01 points")


def test_no_gain_told_apart_is_said_so():
    runs, variants = small_ladder()
    ladder = ranked_table([v for v in variants if v.name != "c"] + [], runs, "ladder", "t")
    said = facts(ladder, task2e.claims_table(runs))
    assert said[1].startswith("No change was told apart as a gain over lenet; the largest "
                              "mean gain was a (change a), +3.00 points")
    assert said[2] == "No change was told apart as a loss against lenet."


# --------------------------------------------------------------------------- the report
def test_reports_2e_opens_with_the_facts_and_uses_the_ladders_baseline(tmp_path):
    from report import build_report
    from reporting.cited import TASK_OUTPUT_RUNS
    for seed, acc in enumerate((0.70, 0.72, 0.74)):  # Task 1's own runs, another baseline
        run_file(tmp_path, "task1", seed, acc)
        path = tmp_path / f"task1_seed{seed}.json"
        data = json.loads(path.read_text())
        del data["config"]["experiment"]
        data["final"] = {s: {"loss": 1.0, "accuracy": acc} for s in ("train", "val", "test")}
        data["config"]["environment"]["threads"] = 2
        path.unlink()
        (tmp_path / f"task1_lenet_seed{seed}.json").write_text(json.dumps(data))
        (tmp_path / f"task2_model21_seed{seed}.json").write_text(json.dumps(
            {**data, "config": {**data["config"], "model": "model21"}}))
    folder = tmp_path / "experiments"
    for seed in range(3):
        run_file(folder, "lenet", seed, 0.60 + 0.02 * seed)
        run_file(folder, "lenet-bn", seed, 0.65 + 0.02 * seed + 0.001 * seed)
        run_file(folder, "lenet-half", seed, 0.55 + 0.02 * seed - 0.001 * seed)
    text, _ = build_report(tmp_path, cited=TASK_OUTPUT_RUNS)
    section = text.split("### 2e")[1].split("\n### ")[0]
    opening = section.split("\n\n")[1]
    assert opening.startswith("**Task 2e in numbers**")
    assert "The baseline, lenet: test accuracy 0.6200 (mean over 3 seeds; cpu, bf16, " \
           "1 thread)." in opening
    assert "Helped most: lenet-bn" in opening and "Hurt: lenet-half" in opening
    assert "Against LeNet" not in section and "0.7200" not in opening


def test_every_plus_minus_in_the_report_comes_from_the_one_function(tmp_path, monkeypatch):
    from report import build_report
    from reporting.cited import TASK_OUTPUT_RUNS
    for seed, acc in enumerate((0.70, 0.72, 0.74)):
        for name, model in (("task1_lenet", "lenet"), ("task2_model21", "model21"),
                            ("task2_model22", "model22")):
            path = run_file(tmp_path, name, seed, acc, model=model)
            data = json.loads(path.read_text())
            del data["config"]["experiment"]
            data["final"] = {s: {"loss": 1.0, "accuracy": acc,
                                 **({"per_class_accuracy": [acc] * 10} if s == "test" else {})}
                             for s in ("train", "val", "test")}
            data["final"]["best_epoch"] = 9.5 + 0.5 * seed
            path.write_text(json.dumps(data))
        run_file(tmp_path / "experiments", "lenet", seed, 0.6 + 0.01 * seed)
        run_file(tmp_path / "experiments", "lenet-bn", seed, 0.62 + 0.013 * seed)
        run_file(tmp_path / "experiments", "model21", seed, 0.7 + 0.01 * seed,
                 baseline="model21", model="model21")
    monkeypatch.setattr(record, "mean_std", lambda values: (
        sum(values) / len(values), 7.77777 if len(values) > 1 else 0.0))
    text, _ = build_report(tmp_path, cited=TASK_OUTPUT_RUNS)
    spreads = re.findall(r"± ?([\d.]+)( s\b)?", text)
    assert len(spreads) > 20
    for value, formula in spreads:
        if formula:  # the interval's width in units of s: "± 2.78 s/√5", no standard deviation
            continue
        assert value in ("7.8", "7.778", "7.7778"), value


def test_the_gains_figure_is_the_same_bytes_from_the_same_runs(tmp_path, monkeypatch):
    import time

    from reporting.figures import draw_gains
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for seed in range(3):
        run_file(tmp_path, "lenet", seed, 0.60 + 0.01 * seed)
        run_file(tmp_path, "lenet-bn", seed, 0.62 + 0.005 * seed)
    runs, variants = read_experiments(tmp_path)
    first = [p.read_bytes() for p in draw_gains(runs, variants, tmp_path / "gain")]
    time.sleep(1.1)  # a PDF's creation date counts seconds
    again = [p.read_bytes() for p in draw_gains(runs, variants, tmp_path / "gain")]
    assert len(first) == 2 and first == again
    from reporting.figures import png_only
    with png_only():  # the PNG alone, as every other figure writes within png_only
        assert draw_gains(runs, variants, tmp_path / "png") == [tmp_path / "png.png"]
    assert not (tmp_path / "png.pdf").exists()
