"""task3_visualisation.py finds the fine-tuned checkpoint by itself: a single run's, the first
seed's of a --seeds run, or the seed --seed names; it says which it used."""
import pytest
import torch
import torchvision
from conftest import run_script, write_image_tree


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory):
    """`task3_resnet.py --seeds 2 --seed 3` on tiny data from random "ImageNet" weights (no
    network here): task3_resnet18_seed3.pt and task3_resnet18_seed4.pt."""
    tmp = tmp_path_factory.mktemp("vis")
    tree = write_image_tree(tmp / "tree")
    torch.manual_seed(0)
    weights = tmp / "resnet18-random.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    out = tmp / "out"
    result = run_script("task3_resnet.py", "--data-dir", str(tree), "--weights", str(weights),
                        "--seeds", "2", "--seed", "3", "--subset", "16", "--epochs", "1",
                        "--image-size", "32", "--output-dir", str(out), "--no-progress",
                        env={"CIFAR10_CACHE_DIR": str(tmp / "cache")})  # module scope: set here
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.glob("*.pt")} == {"task3_resnet18_seed3.pt",
                                                  "task3_resnet18_seed4.pt"}
    return tree, out


def visualise(tree, out, *flags):
    return run_script("task3_visualisation.py", "--data-dir", str(tree), "--output-dir",
                      str(out), "--device", "cpu", *flags)


def test_finds_the_checkpoint_of_the_seed_asked_for(seeded_runs):
    tree, out = seeded_runs
    result = visualise(tree, out, "--seed", "4")
    assert result.returncode == 0, result.stderr
    assert (f"fine-tuned checkpoint: {out / 'task3_resnet18_seed4.pt'} (seed 4 of a --seeds "
            "run (--seed 4))") in result.stdout
    assert "task3_resnet18_seed4.pt" in result.stdout.split("model: ", 1)[1].splitlines()[0]
    for name in ("task3e_first_layer_activations.png", "task3f_last_layer_activations.png",
                 "task3g_first_layer_filters.png"):
        assert (out / name).stat().st_size > 0, name


def test_without_a_seed_takes_the_first_seed_and_says_so(seeded_runs):
    tree, out = seeded_runs
    result = visualise(tree, out)
    assert result.returncode == 0, result.stderr
    assert (f"fine-tuned checkpoint: {out / 'task3_resnet18_seed3.pt'} (seed 3, the first of "
            "the --seeds run written last (--seed N shows another))") in result.stdout


def test_a_seed_that_was_not_trained_is_one_line_and_exit_1(seeded_runs):
    tree, out = seeded_runs
    result = visualise(tree, out, "--seed", "7")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "--seed 7: no fine-tuned checkpoint" in result.stderr


def test_before_task_3_it_says_no_fine_tuned_checkpoint_was_found(seeded_runs, tmp_path):
    tree, out = seeded_runs
    weights = out.parent / "resnet18-random.pth"
    empty = tmp_path / "empty"
    result = visualise(tree, empty, "--weights", str(weights))
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == (f"no fine-tuned checkpoint (task3_resnet18.pt or task3_resnet18_seed<k>.pt)"
                     f" in {empty}: using the ImageNet model"), first
    assert "not fine-tuned" in result.stdout
