"""The original 2019 student report's numbers: the one table every comparison reads (REPORT.md,
README's results table, run_all.py's summary, Task 2's table).

Keyed by the run name the task scripts give each model. `final` holds the report's own figures
for the splits it printed (measured there on the original CIFAR-10); `note` says what to keep in
mind beside them. Its train columns are unreliable: Model 2.1's 0.003 loss beside 0.909
accuracy cannot both hold for one model on one split. Its ResNet18 run re-initialised the
pretrained weights (about 0.62 test); other students reached 0.85-0.89.
"""
from __future__ import annotations

ORIGINAL_REPORT = {
    "task1_lenet": {
        "label": "LeNet",
        "final": {"train": {"accuracy": 0.9041}, "val": {"accuracy": 0.7214},
                  "test": {"accuracy": 0.7206}},
        "note": "",
    },
    "task2_model21": {
        "label": "Model 2.1",
        "final": {"test": {"loss": 0.933, "accuracy": 0.806},
                  "val": {"loss": 0.852, "accuracy": 0.823},
                  "train": {"loss": 0.003, "accuracy": 0.909}},
        "note": "",
    },
    "task2_model22": {
        "label": "Model 2.2",
        "final": {"test": {"loss": 0.714, "accuracy": 0.783},
                  "val": {"loss": 0.717, "accuracy": 0.782},
                  "train": {"loss": 0.258, "accuracy": 0.912}},
        "note": "",
    },
    "task3_resnet18": {
        "label": "ResNet18",
        "final": {"test": {"accuracy": 0.62}},
        "note": "the report re-initialised the ImageNet weights; other students: 0.85-0.89",
    },
}


def original_test_accuracy(run_name: str) -> float | None:
    """The report's test accuracy of the model a run name stands for, None when it has none."""
    entry = ORIGINAL_REPORT.get(run_name)
    return entry["final"]["test"]["accuracy"] if entry else None


def original_finals(run_names) -> dict[str, dict]:
    """{label: the report's final numbers} of the given run names (for `plots.final_table`)."""
    return {ORIGINAL_REPORT[n]["label"]: ORIGINAL_REPORT[n]["final"] for n in run_names
            if n in ORIGINAL_REPORT}
