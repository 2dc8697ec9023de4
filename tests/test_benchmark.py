"""benchmark.py runs and writes its JSON; bad flags are one line. Never a speed assertion:
the numbers depend on the machine and on whatever else it is doing."""
import json

from conftest import run_script


def test_benchmark_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("benchmark.py", "--models", "lenet", "--steps", "2", "--warmup", "1",
                        "--device", "cpu", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "lenet" in result.stdout and "pipeline" in result.stdout
    bench = json.loads(out.read_text())
    assert bench["device"] == "cpu" and bench["torch"]
    assert list(bench["models"]) == ["lenet"]
    lenet = bench["models"]["lenet"]
    for key in ("pipeline_img_s", "eager_img_s", "naive_img_s"):
        assert isinstance(lenet[key], float) and lenet[key] > 0, key
    assert lenet["graphed_img_s"] is None and lenet["cuda_graphs"] is False  # no CUDA here
    assert "graphed" in result.stdout and "a/b" in result.stdout
    assert lenet["batch_size"] == 64 and lenet["parameters"] == 390_410
    assert bench["steps"] == 2 and "benchmark.py" in bench["command"]


def test_benchmark_no_naive_and_real_images(tmp_path):
    from conftest import write_pickle_batches

    data = write_pickle_batches(tmp_path / "data", n_train_per_class=2)
    out = tmp_path / "bench.json"
    result = run_script("benchmark.py", "--models", "lenet", "--steps", "1", "--warmup", "0",
                        "--device", "cpu", "--no-naive", "--data-dir", str(data),
                        "--json", str(out))
    assert result.returncode == 0, result.stderr
    bench = json.loads(out.read_text())
    assert bench["data"]["kind"] == "cifar10 train"
    assert bench["data"]["source"]["kind"] == "cifar-10-batches-py"
    lenet = bench["models"]["lenet"]
    assert lenet["naive_img_s"] is None and lenet["pipeline_img_s"] > 0


def test_benchmark_times_a_chosen_precision_and_names_it(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("benchmark.py", "--models", "lenet", "--steps", "1", "--warmup", "0",
                        "--device", "cpu", "--precision", "fp16", "--no-naive",
                        "--json", str(out))
    assert result.returncode == 0, result.stderr
    bench = json.loads(out.read_text())
    assert bench["precision"] == bench["models"]["lenet"]["precision"] == "fp16"
    header, row = [line.split() for line in result.stdout.splitlines()
                   if line.startswith(("model ", "lenet "))]
    assert row[header.index("prec")] == "fp16"


def test_benchmark_bad_models_is_one_line(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("benchmark.py", "--models", "lenet,vgg16", "--device", "cpu",
                        "--json", str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "vgg16" in lines[0] and "resnet18" in lines[0]
    assert not out.exists()
