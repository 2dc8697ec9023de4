"""Task 2e's settings (device, CPU model, precision, threads): a pair is made within one, a
run resumed elsewhere is a setting of its own, and a baseline made in two reads per setting
(its means, its rows), on planted runs."""
import pytest
from test_experiments_measures import ONE_THREAD, run_file

from reporting import task2e
from reporting.paired import paired
from reporting.task2e import MEASURES, facts, ranked_table, read_experiments


def test_runs_of_another_thread_count_are_not_paired(tmp_path):
    for seed in range(3):
        run_file(tmp_path, "lenet", seed, 0.60 + 0.01 * seed)
    run_file(tmp_path, "lenet-bn", 0, 0.62)
    run_file(tmp_path, "lenet-bn", 1, 0.63)
    run_file(tmp_path, "lenet-bn", 2, 0.64, threads=2)  # the same recipe, two threads
    run_file(tmp_path, "lenet-l2", 5, 0.64)  # no baseline of that seed
    runs, variants = read_experiments(tmp_path)
    gain = paired(runs, "lenet-bn", "lenet", "test_acc")
    assert gain.seeds == (0, 1) and gain.diffs == pytest.approx((0.02, 0.02))
    assert gain.unpaired == ((2, ("lenet-bn ran on cpu, bf16, 2 threads, lenet on cpu, bf16, "
                                 "1 thread")),)
    table = ranked_table(variants, runs, "ladder", "t")
    notes = " ".join(table.notes)
    assert ("lenet-bn: 1 seed left unpaired (seed 2: lenet-bn ran on cpu, bf16, 2 threads, "
            "lenet on cpu, bf16, 1 thread); a pair is made only within one device, CPU, "
            "precision and thread count.") in table.notes
    assert "lenet-l2: 1 seed left unpaired (seed 5: lenet has no run of that seed)" in notes
    assert dict(zip(table.column("variant"), table.column("seeds")))["lenet-bn"] == "2"


def test_runs_on_a_cpu_of_another_kind_or_resumed_there_are_not_paired(tmp_path):
    amd = "AMD EPYC"
    for seed in range(4):
        run_file(tmp_path, "lenet", seed, 0.60 + 0.01 * seed, cpu=amd if seed == 3 else None)
    run_file(tmp_path, "lenet-bn", 0, 0.62)  # neither recorded its CPU: paired
    run_file(tmp_path, "lenet-bn", 1, 0.63, cpu=amd)  # baseline's CPU not recorded
    run_file(tmp_path, "lenet-bn", 2, 0.64, resumed_on=[{"cpu": amd, "threads": 1}])
    run_file(tmp_path, "lenet-bn", 3, 0.64, cpu=amd)  # both on the AMD EPYC: paired
    runs, _ = read_experiments(tmp_path)
    gain = paired(runs, "lenet-bn", "lenet", "test_acc")
    assert gain.seeds == (0, 3) and gain.diffs == pytest.approx((0.02, 0.01))
    assert dict(gain.unpaired) == {
        1: "lenet-bn ran on cpu (AMD EPYC), bf16, 1 thread, lenet on cpu, bf16, 1 thread",
        2: ("lenet-bn ran on cpu, bf16, 1 thread; resumed on cpu (AMD EPYC), bf16, 1 thread, "
            "lenet on cpu, bf16, 1 thread")}


def test_a_gpu_runs_setting_names_its_gpu_and_a_move_back_and_forth_once():
    from pathlib import Path

    from reporting.task2e import setting
    from training.record import Run

    def run(device, env, moves=()):
        config = {"device": device, "precision": "bf16", "environment": env,
                  **({"resumed_on": list(moves)} if moves else {})}
        return Run.from_dict({"config": config, "history": []}, Path("r.json"))
    h200 = {"cpu": "AMD EPYC", "gpu": "NVIDIA H200", "threads": 16}
    assert setting(run("cuda", h200)) == "cuda (NVIDIA H200), bf16, 16 threads"
    assert setting(run("cuda", h200, [{**h200, "cpu": "Intel"}])) == setting(run("cuda", h200))
    amd, intel = {"cpu": "AMD EPYC", "threads": 1}, {"cpu": "Intel", "threads": 1}
    assert setting(run("cpu", amd, [intel])) == ("cpu (AMD EPYC), bf16, 1 thread; resumed on "
                                                 "cpu (Intel), bf16, 1 thread")


def test_a_baseline_run_on_two_cpu_kinds_has_a_mean_for_each(tmp_path):
    # lenet's seeds 0-1 made where the CPU was not recorded, 5-6 on the AMD EPYC; lenet-bn
    # beside the first, lenet-2conv beside the second: no mean mixes the two settings.
    amd = "AMD EPYC"
    for seed, acc in ((0, 0.70), (1, 0.72)):
        run_file(tmp_path, "lenet", seed, acc)
        run_file(tmp_path, "lenet-bn", seed, acc + 0.01)
    for seed, acc in ((5, 0.60), (6, 0.62)):
        run_file(tmp_path, "lenet", seed, acc, cpu=amd, val_acc=acc)
        run_file(tmp_path, "lenet-2conv", seed, acc + 0.03, cpu=amd, val_acc=acc + 0.03)
    runs, variants = read_experiments(tmp_path)
    assert list(task2e.by_setting(runs["lenet"])) == [ONE_THREAD, f"cpu ({amd}), bf16, 1 thread"]
    assert task2e.baseline_note(runs, "lenet") == (
        "The baseline, lenet: test accuracy 0.7100 (mean over 2 seeds; cpu, bf16, 1 thread) and "
        "0.6100 (mean over 2 seeds; cpu (AMD EPYC), bf16, 1 thread); each change is paired with "
        "the baseline's runs of its own setting.")
    note = task2e.baseline_note(runs, "lenet", variants)
    assert note == ("The baseline, lenet: test accuracy 0.7100 (mean over 2 seeds; cpu, bf16, "
                    "1 thread; beside lenet-bn) and 0.6100 (mean over 2 seeds; cpu (AMD EPYC), "
                    "bf16, 1 thread; beside lenet-2conv); each change is paired with the "
                    "baseline's runs of its own setting.")
    assert facts(ranked_table(variants, runs, "ladder", "t"), task2e.claims_table(runs))[0] \
        == note
    speed = task2e.speed_table(variants, runs)
    rows = {row[0]: dict(zip(speed.header, row)) for row in speed.rows}
    assert set(rows) == {"lenet (cpu, bf16, 1 thread)", "lenet (cpu (AMD EPYC), bf16, 1 thread)",
                         "lenet-bn", "lenet-2conv"}
    assert rows["lenet (cpu (AMD EPYC), bf16, 1 thread)"]["seeds"] == "2"
    assert rows["lenet (cpu (AMD EPYC), bf16, 1 thread)"][MEASURES["val_acc_2"].short] == "0.6100"
    assert rows["lenet-2conv"]["Δ val acc at epoch 2 [95 % CI]"].startswith("+0.0300")
    assert any("has a row for each" in n for n in speed.notes)


def test_a_change_run_in_two_settings_gives_each_row_its_own_pairs(tmp_path):
    amd = "AMD EPYC"
    for seed in (0, 1, 5, 6):
        cpu = amd if seed >= 5 else None
        run_file(tmp_path, "lenet", seed, 0.60, cpu=cpu, val_acc=0.60)
        run_file(tmp_path, "lenet-bn", seed, 0.61, cpu=cpu, val_acc=0.61 if cpu else 0.65)
    runs, variants = read_experiments(tmp_path)
    speed = task2e.speed_table(variants, runs)
    gains = {row[0]: row[speed.header.index("Δ val acc at epoch 2 [95 % CI]")]
             for row in speed.rows}
    assert gains["lenet-bn (cpu, bf16, 1 thread)"].startswith("+0.0500")
    assert gains["lenet-bn (cpu (AMD EPYC), bf16, 1 thread)"].startswith("+0.0100")
