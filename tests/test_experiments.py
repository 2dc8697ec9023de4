"""task2_experiments.py and reporting/task2e.py: the variants (each variant's layers against
what its change says), the pairing over seeds, the paired intervals and verdicts, the
ranking, and the command's handling of finished, interrupted and unknown runs, on tiny data
the tests write."""
import dataclasses
import json
import math

import pytest
import torch
from conftest import run_script, typed, write_image_tree
from torch import nn

import task2_experiments as exp
import trainer
from reporting import task2e
from reporting.paired import Paired, claim_verdict, paired, verdict
from reporting.task2e import measures, ranked_table
from task1_lenet import LeNet
from training.architecture import parameter_table
from training.jobs import make_optimizer


def test_lenet_defaults_are_task1s_network():
    model = LeNet()
    assert parameter_table(model)[1] == 390_410
    assert [name for name, _ in model.named_parameters()] == [
        f"layers.{layer}.{kind}" for layer in ("conv1", "conv2", "conv3", "dense1", "dense2")
        for kind in ("weight", "bias")]
    assert [name for name, _ in model.layers.named_children()] == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "pool3",
        "flatten", "dense1", "relu4", "dense2"]


@pytest.mark.parametrize("name", list(exp.VARIANTS))
def test_every_variant_builds_and_trains_a_step(name):
    variant = exp.VARIANTS[name]
    torch.manual_seed(0)
    model = variant.build()
    job = variant.job(0, 10)
    optimizer = make_optimizer(job.optimizer, model, job.lr, job.weight_decay)
    before = [p.detach().clone() for p in model.parameters()]
    images, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    assert model(images).shape == (4, 10) and math.isfinite(loss.item())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert job.epochs == 10 and job.patience == 0 and job.run_name == f"{name}_seed0"


def test_variants_change_what_they_say():
    v = exp.VARIANTS
    assert v["lenet-l2"].job(0, 10).weight_decay == exp.L2
    assert v["lenet-adam"].job(0, 10).optimizer == "Adam"
    assert v["model21-adam"].job(0, 10).optimizer == "Adam"
    assert v["model22"].job(0, 10).batch_size == 32 and v["lenet"].job(0, 10).batch_size == 64
    convs = [m for m in v["lenet-3x3"].build().modules() if isinstance(m, torch.nn.Conv2d)]
    assert {c.kernel_size for c in convs} == {(3, 3)}
    strided = v["lenet-strided"].build()
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in strided.modules())
    assert parameter_table(v["lenet-double"].build())[1] > parameter_table(LeNet())[1]
    assert all(b.baseline in v for b in v.values() if b.baseline)


def test_interval_and_verdict_by_hand():
    # diffs 0.01, 0.02, 0.03: mean 0.02, sd 0.01, t(0.975, 2) = 4.3027 (tables: 4.303)
    p = Paired((0, 1, 2), (0.01, 0.02, 0.03))
    assert p.mean == pytest.approx(0.02)
    assert p.half_width == pytest.approx(4.3027 * 0.01 / math.sqrt(3), rel=1e-4)
    assert p.interval[0] < 0 < p.interval[1]
    assert verdict(p) == "not distinguishable: smaller than 2.48 points, if any"
    q = Paired((0, 1, 2), (0.020, 0.021, 0.019))  # sd 0.001: interval 0.02 +- 0.0025
    assert q.interval == pytest.approx((0.02 - 4.3027 * 0.001 / math.sqrt(3),
                                        0.02 + 4.3027 * 0.001 / math.sqrt(3)), rel=1e-4)
    assert verdict(q) == "better" and verdict(Paired((0, 1), (-0.02, -0.021))) == "worse"
    assert verdict(Paired((0,), (0.5,))) == "one seed: no interval"
    assert claim_verdict(q, 1) == "supported" and claim_verdict(q, -1) == "contradicted"
    assert claim_verdict(p, 0) == "consistent: not distinguishable at 3 seeds"
    assert claim_verdict(q, 0) == "does not hold: a difference"


def _run(variant, seed, accs, val_losses=None, metric="val_loss", tests=None):
    """A run dict whose history has one check per half epoch with these validation
    accuracies."""
    history = []
    for i, acc in enumerate(accs):
        loss = val_losses[i] if val_losses else 2 - acc
        history.append({"epoch": 0.5 * (i + 1), "step": i + 1, "train_loss": 1.0,
                        "val_loss": loss, "val_accuracy": acc,
                        "test_accuracy": tests[i] if tests else acc - 0.01,
                        "test_loss": loss})
    return {"config": {"seed": seed, "stop_metric": metric, "parameters": 10,
                       "experiment": {"variant": variant}},
            "history": history, "final": {}, "status": "finished",
            "timings": {"train_s": 60.0}}


def test_measures_read_the_test_split_only_at_the_check_validation_chose():
    accs = [0.5 + 0.015 * i for i in range(20)]  # 0.70 first passed at check 15 (0.71)
    tests = [0.3] * 20
    tests[3] = 0.99  # the best test accuracy, at a check validation does not choose
    m = measures(typed(_run("lenet", 0, accs, tests=tests))[0])
    assert m["test_acc"] == 0.3                      # the last check has the lowest val loss
    assert m["val_acc_2"] == pytest.approx(accs[3])  # epoch 2.0 is the 4th check
    assert m["first_070"] == pytest.approx(7.5)
    assert m["roughness"] == 0  # the validation loss only falls: no rise, no roughness
    assert m["test_acc_10"] == 0.3


def test_ranking_puts_the_largest_gain_first():
    base = [0.6] * 20
    runs = {}
    for name, shift in (("lenet", 0.0), ("lenet-bn", 0.05), ("lenet-half", -0.02),
                        ("lenet-3x3", 0.01)):
        runs[name] = {s: measures(typed(_run(name, s, [a + shift + 0.001 * s for a in base]))[0])
                      for s in range(3)}
    table = ranked_table(list(exp.VARIANTS.values()), runs, "ladder", "t")
    assert table.column("variant") == ["lenet-bn", "lenet-3x3", "lenet-half"]
    assert table.column("verdict")[0] == "better" and table.column("verdict")[2] == "worse"
    assert paired(runs, "lenet-bn", "lenet", "test_acc").mean == pytest.approx(0.05)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_image_tree(tmp_path_factory.mktemp("exp-data") / "tree", n_train_per_class=12,
                            n_test_per_class=3)


def _command(data, out, *extra):
    return ["task2_experiments.py", "--data-dir", str(data), "--output-dir", str(out),
            "--epochs", "1", "--seeds", "1", "--no-progress", "--device", "cpu", *extra]


def test_unknown_variant_is_one_line(tmp_path):
    result = run_script(*_command(tmp_path, tmp_path, "--only", "lenet", "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nope" in result.stderr
    assert "lenet-bn" in result.stderr and "Traceback" not in result.stderr


def test_list_names_every_variant_with_its_parameters():
    result = run_script("task2_experiments.py", "--list")
    assert result.returncode == 0
    for name in exp.VARIANTS:
        assert f"\n{name} " in result.stdout
    assert "390,410" in result.stdout and "1,438,666" in result.stdout


def test_finished_runs_are_skipped_and_interrupted_ones_resumed(tiny_data, tmp_path):
    out = tmp_path / "out"
    first = run_script(*_command(tiny_data, out, "--only", "lenet", "lenet-l2"))
    assert first.returncode == 0, first.stderr
    folder = out / "experiments"
    runs = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert set(runs) == {"lenet_seed0", "lenet-l2_seed0"}
    assert runs["lenet-l2_seed0"]["config"]["weight_decay"] == exp.L2
    assert runs["lenet_seed0"]["config"]["experiment"]["baseline"] is None
    assert (folder / "experiments.md").is_file() and (folder / "experiments_gain.png").is_file()
    stamp = (folder / "lenet_seed0.json").stat().st_mtime_ns

    again = run_script(*_command(tiny_data, out, "--only", "lenet", "lenet-l2"))
    assert again.returncode == 0 and "2 finished already, 0 to train" in again.stdout
    assert (folder / "lenet_seed0.json").stat().st_mtime_ns == stamp

    # An interrupted run: its JSON and checkpoint say interrupted, before the final
    # evaluation.
    path, ckpt_path = folder / "lenet-l2_seed0.json", folder / "lenet-l2_seed0.pt"
    run = json.loads(path.read_text())
    run["status"], run["final"] = "interrupted", None
    path.write_text(json.dumps(run))
    ckpt = torch.load(ckpt_path, weights_only=False)
    ckpt["trainer"]["status"], ckpt["trainer"]["final"] = "interrupted", None
    torch.save(ckpt, ckpt_path)
    refused = run_script(*_command(tiny_data, out, "--only", "lenet", "lenet-l2"))
    assert refused.returncode == 2 and "--resume" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    resumed = run_script(*_command(tiny_data, out, "--only", "lenet", "lenet-l2", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert "(resuming)" in resumed.stdout and "1 to train" in resumed.stdout
    assert json.loads(path.read_text())["final"] is not None


def test_a_variant_and_its_baseline_see_the_same_split_batches_and_init(tiny_data, tmp_path,
                                                                        monkeypatch):
    seen = {}
    real_fit = trainer.fit

    def spy(model, optimizer, data, args, hardware, *, run_name, **kw):
        images, labels = next(iter(data.train))
        seen[run_name] = {"val": data.info["n_val"], "first": (images.clone(), labels.clone()),
                          "conv1": next(model.parameters()).detach().clone()}
        return real_fit(model, optimizer, data, args, hardware, run_name=run_name, **kw)

    monkeypatch.setattr(trainer, "fit", spy)
    args = exp.get_args_parser().parse_args(_command(tiny_data, tmp_path)[1:] + [
        "--only", "lenet", "lenet-l2", "lenet-xavier", "--seeds", "2", "--parallel", "1"])
    exp.main(args)
    for seed in (0, 1):
        base = seen[f"lenet_seed{seed}"]
        for other in ("lenet-l2", "lenet-xavier"):
            run = seen[f"{other}_seed{seed}"]
            assert torch.equal(run["first"][0], base["first"][0])
            assert torch.equal(run["first"][1], base["first"][1])
        assert torch.equal(seen[f"lenet-l2_seed{seed}"]["conv1"], base["conv1"])
        assert not torch.equal(seen[f"lenet-xavier_seed{seed}"]["conv1"], base["conv1"])
    assert not torch.equal(seen["lenet_seed0"]["first"][1], seen["lenet_seed1"]["first"][1])
    _tables, runs, arms = task2e.experiment_tables(tmp_path / "experiments")
    assert set(runs) == {"lenet", "lenet-l2", "lenet-xavier"}
    assert [(a.name, a.baseline, a.group) for a in arms] == [
        ("lenet", None, "ladder"), ("lenet-l2", "lenet", "ladder"),
        ("lenet-xavier", "lenet", "ladder")]
    assert arms[2].changes == exp.VARIANTS["lenet-xavier"].changes
    assert all(len(seeds) == 2 for seeds in runs.values())


def test_parallel_processes_share_the_runs(tiny_data, tmp_path):
    out = tmp_path / "out"
    result = run_script(*_command(tiny_data, out, "--only", "lenet", "lenet-half",
                                  "lenet-3x3", "--parallel", "2"))
    assert result.returncode == 0, result.stderr
    folder = out / "experiments"
    assert {p.stem for p in folder.glob("*.json")} == {"lenet_seed0", "lenet-half_seed0",
                                                      "lenet-3x3_seed0"}
    assert "[w0] " in result.stdout and "[w1] " in result.stdout
    assert result.stdout.count("[run ") == 3  # each run trained once, by one process
    assert not (folder / ".claims").exists()
    for path in folder.glob("*.json"):
        config = json.loads(path.read_text())["config"]
        assert config["environment"]["threads"] == 1  # one thread per run, on any machine
        assert "--worker" not in config["command"] and "--parallel 2" in config["command"]


# --------------------------------------------------------------------------- the variants
def layers(model: nn.Module) -> list[tuple]:
    """Every leaf module in order: (type, its parameters' shapes, what else shapes it: a
    convolution's stride and padding, a pooling's size, a dropout's p)."""
    out = []
    for module in model.modules():
        if any(True for _ in module.children()):
            continue
        extra = ()
        if isinstance(module, nn.Conv2d):
            extra = (module.stride, module.padding)
        elif isinstance(module, nn.MaxPool2d):
            extra = (module.kernel_size,)
        elif isinstance(module, (nn.Dropout, nn.Dropout2d)):
            extra = (module.p,)
        out.append((type(module).__name__,
                    tuple(tuple(p.shape) for p in module.parameters(recurse=False)), extra))
    return out


def lenet_layers(k=5, channels=(32, 64, 128), stride=False, bn=False, convs=1, dropout=0.0):
    """Task 1's LeNet as its handout table gives it (three conv-relu-pool blocks, dense 64,
    dense 10), with the changes the handout suggests, written out layer by layer."""
    out, c_in = [], 3
    for c in channels:
        for j in range(convs):
            s = 2 if stride and j == convs - 1 else 1
            out.append(("Conv2d", ((c, c_in, k, k), (c,)), ((s, s), (k // 2, k // 2))))
            out += [("BatchNorm2d", ((c,), (c,)), ())] if bn else []
            out.append(("ReLU", (), ()))
            c_in = c
        out += [] if stride else [("MaxPool2d", (), (2,))]
    out.append(("Flatten", (), ()))
    out += [("Dropout", (), (dropout,))] if dropout else []
    out.append(("Linear", ((64, c_in * 4 * 4), (64,)), ()))
    out += [("BatchNorm1d", ((64,), (64,)), ())] if bn else []
    out.append(("ReLU", (), ()))
    out += [("Dropout", (), (dropout,))] if dropout else []
    out.append(("Linear", ((10, 64), (10,)), ()))
    return out


# What each LeNet variant's change says, as lenet_layers' arguments, and its training
# (optimizer, learning rate, weight decay); every other setting is the baseline's.
LADDER = {
    "lenet": ({}, {}),
    "lenet-3x3": ({"k": 3}, {}),
    "lenet-half": ({"channels": (16, 32, 64)}, {}),
    "lenet-double": ({"channels": (64, 128, 256)}, {}),
    "lenet-strided": ({"stride": True}, {}),
    "lenet-bn": ({"bn": True}, {}),
    "lenet-2conv": ({"convs": 2}, {}),
    "lenet-l2": ({}, {"weight_decay": 5e-4}),
    "lenet-dropout": ({"dropout": 0.5}, {}),
    "lenet-xavier": ({}, {}),
    "lenet-adam": ({}, {"optimizer": "Adam", "lr": 1e-3}),
}


def changed_as_said(name: str) -> None:
    variant = exp.VARIANTS[name]
    shape, training = LADDER[name]
    assert layers(variant.build()) == lenet_layers(**shape), name
    job, base = variant.job(0, 10), exp.VARIANTS["lenet"].job(0, 10)
    expected = {"optimizer": base.optimizer, "lr": base.lr, "weight_decay": base.weight_decay,
                **training}
    assert {k: getattr(job, k) for k in expected} == expected, name
    assert job.batch_size == base.batch_size


@pytest.mark.parametrize("name", [n for n, v in exp.VARIANTS.items() if v.recipe == "lenet"])
def test_each_lenet_variant_differs_from_lenet_exactly_as_its_change_says(name):
    assert name in LADDER, f"{name}: say what its change is in LADDER"
    assert exp.VARIANTS[name].baseline == (None if name == "lenet" else "lenet")
    changed_as_said(name)


def test_the_baseline_is_task_1s_network_and_xavier_changes_only_the_initialization():
    from task1_lenet import LeNet
    assert layers(LeNet()) == lenet_layers() == layers(exp.VARIANTS["lenet"].build())
    torch.manual_seed(0)
    xavier = exp.VARIANTS["lenet-xavier"].build()
    torch.manual_seed(0)
    default = exp.VARIANTS["lenet"].build()
    convs = [m for m in xavier.modules() if isinstance(m, nn.Conv2d)]
    assert all(torch.count_nonzero(c.bias) == 0 for c in convs)
    for c in convs:  # Xavier-uniform: |w| <= sqrt(6 / (fan_in + fan_out))
        fan_in, fan_out = c.weight[0].numel(), c.weight.shape[0] * c.weight[0, 0].numel()
        assert c.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out)) + 1e-6
    assert all(torch.count_nonzero(m.bias) > 0 for m in default.modules()
               if isinstance(m, nn.Conv2d))


def test_the_check_catches_lenet_bn_built_without_batchnorm(monkeypatch):
    without = dataclasses.replace(exp.VARIANTS["lenet-bn"], model={})
    monkeypatch.setitem(exp.VARIANTS, "lenet-bn", without)
    with pytest.raises(AssertionError):
        changed_as_said("lenet-bn")


def test_each_report_variant_differs_from_its_recipe_as_its_change_says():
    v = exp.VARIANTS

    def convs_to_5x5(entries):
        return [(t, ((s[0][:2] + (5, 5), s[1]) if t == "Conv2d" else s),
                 ((e[0], (2, 2)) if t == "Conv2d" else e)) for t, s, e in entries]

    model22 = layers(v["model22"].build())
    assert layers(v["model22-5x5"].build()) == convs_to_5x5(model22)
    assert layers(v["model22-p0.1"].build()) == [
        (t, s, (0.1,) if t == "Dropout2d" else e) for t, s, e in model22]
    assert [e for e in model22 if e[0] == "Dropout2d"] == [("Dropout2d", (), (0.5,))] * 3
    assert layers(v["model22-p0"].build()) == [e for e in model22 if e[0] != "Dropout2d"]
    model21 = layers(v["model21"].build())
    assert layers(v["model21-default-init"].build()) == model21
    assert layers(v["model21-adam"].build()) == model21
    assert v["model21-adam"].job(0, 10).optimizer == "Adam" != v["model21"].job(0, 10).optimizer
    torch.manual_seed(0)
    assert all(torch.count_nonzero(m.bias) > 0 for m in v["model21-default-init"].build()
               .modules() if isinstance(m, nn.Conv2d))
    assert all(torch.count_nonzero(m.bias) == 0 for m in v["model21"].build().modules()
               if isinstance(m, nn.Conv2d))
