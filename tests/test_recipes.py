"""The one table of the models, read by name: run names with a seed suffix, the labels
--best-model names, and the test curve measured on the test split (not validation)."""
import json

from conftest import run_script, write_image_tree
from test_trainer import make_trainer

from training.recipes import RECIPES, TASK2, by_run_name, task2_label


def test_by_run_name_reads_every_seed_suffix():
    lenet = RECIPES["lenet"]
    for name in ("task1_lenet", "task1_lenet_seed0", "task1_lenet_seed3", "task1_lenet_seed12"):
        assert by_run_name(name) is lenet, name
    for name in ("task1_lenet_seed", "task1_lenet_seedx", "task1_lenet_k5", "task1_lenetx"):
        assert by_run_name(name) is None, name
    assert by_run_name("task2_model22_seed2") is RECIPES["model22"]


def test_task2_label_takes_the_flags_value_not_the_key():
    assert [task2_label(r.choice) for r in TASK2] == ["Model 2.1", "Model 2.2"]
    for value in ("auto", "both", None, "model21", "model22"):
        assert task2_label(value) is None, value


def test_the_test_curve_is_measured_on_the_test_split(tmp_path):
    """Validation labels are the opposite of the test labels: a test curve measured on the
    validation split would follow the validation one."""
    run = make_trainer(tmp_path, flip_val=True, epochs=3, patience=0).train()
    last = run["history"][-1]
    assert last["val_accuracy"] < 0.1 and last["test_accuracy"] > 0.9
    assert run["final"]["test"]["accuracy"] > 0.9 and run["final"]["val"]["accuracy"] < 0.1


def test_a_task_script_passes_no_test_curve_on(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=20)
    for flag, out in (([], tmp_path / "with"), (["--no-test-curve"], tmp_path / "without")):
        result = run_script("task1_lenet.py", "--data-dir", str(tree), "--epochs", "1",
                            "--batch-size", "16", "--output-dir", str(out), "--no-progress",
                            *flag)
        assert result.returncode == 0, result.stderr
        history = json.loads((out / "task1_lenet.json").read_text())["history"]
        assert all(("test_accuracy" in h) == (not flag) for h in history), flag
