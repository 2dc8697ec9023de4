"""Task 2e's answer from the experiments' run files (task2_experiments.py): what each variant
measured within the handout's 10 epochs, each variant against its baseline of the same seed
(paired differences, a 95 % interval over seeds, a verdict), the variants ranked by their gain
in test accuracy, the original report's claims held against the measures that test them, and
a figure of the gains.

Every number comes from the histories in the run JSONs: the test split is read at the check
the validation split chose (it never chooses anything). The intervals are Student's t over
the per-seed differences; with few seeds they are wide, and "not distinguishable" means the
seeds could not tell, not that the two are equal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runs import atomic_write_text, load_run
from tables import Table, to_latex, to_markdown

BAR = 0.75          # the handout: "at least 75 % accuracy on the CIFAR-10 test set"
BUDGET = 10.0       # ... "within 10 epochs"
SPEED_EPOCH = 2.0   # learning speed: validation accuracy at this epoch
SPEED_TARGET = 0.70  # ... and the first epoch that reaches this validation accuracy
# Student's t, two-sided 95 % (the 0.975 quantile), by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (df > 30: 1.96)."""
    if df > 30:
        return 1.96
    return T975.get(df) or T975[max(k for k in T975 if k <= df)]


# --------------------------------------------------------------------------- measures
@dataclass(frozen=True)
class Measure:
    key: str
    short: str          # in tables
    label: str          # what it is, in full


MEASURES = {m.key: m for m in (
    Measure("test_acc", "test acc (10 epochs)",
            "test accuracy of the best-validation check within 10 epochs"),
    Measure("val_acc_2", f"val acc at epoch {SPEED_EPOCH:g}",
            f"validation accuracy at epoch {SPEED_EPOCH:g} (learning speed)"),
    Measure("val_acc_5", "val acc at epoch 5", "validation accuracy at epoch 5"),
    Measure("first_070", f"first epoch val acc ≥ {SPEED_TARGET:.2f}",
            f"the first epoch whose check reaches validation accuracy {SPEED_TARGET:.2f}"),
    Measure("roughness", "roughness",
            "mean absolute change of validation loss between consecutive checks (two an "
            "epoch) over epochs 0.5-10: higher is rougher"),
    Measure("test_acc_10", "test acc at epoch 10", "test accuracy at the check of epoch 10"),
)}


def _at(history: list[dict], epoch: float) -> dict | None:
    """The check nearest to `epoch`, within a quarter of an epoch (checks fall at whole
    steps: epoch 2 of 703 batches an epoch is checked at 1.9972); None when there is none."""
    near = [h for h in history if abs(h["epoch"] - epoch) <= 0.25]
    return min(near, key=lambda h: abs(h["epoch"] - epoch)) if near else None


def measures(run: dict) -> dict[str, float | None]:
    """The measures of one run, from its history (None where it did not get that far)."""
    config, history = run.get("config") or {}, run.get("history") or []
    within = [h for h in history if h["epoch"] <= BUDGET + 0.01]
    metric = config.get("stop_metric", "val_loss")
    best = None
    if within:
        pick = min if metric == "val_loss" else max
        best = pick(within, key=lambda h: h[metric])
    at2, at5 = _at(history, SPEED_EPOCH), _at(history, 5.0)
    last = _at(history, BUDGET)
    reached = [h["epoch"] for h in within if h["val_accuracy"] >= SPEED_TARGET]
    rough = [h for h in within if h["epoch"] >= 0.5 - 1e-6]
    return {
        "test_acc": best.get("test_accuracy") if best else None,
        "val_acc_2": at2["val_accuracy"] if at2 else None,
        "val_acc_5": at5["val_accuracy"] if at5 else None,
        "first_070": reached[0] if reached else None,
        "roughness": (float(np.mean(np.abs(np.diff([h["val_loss"] for h in rough]))))
                      if len(rough) > 1 else None),
        "test_acc_10": last.get("test_accuracy") if last else None,
        "parameters": config.get("parameters"),
        "train_s": (run.get("timings") or {}).get("train_s"),
        "status": run.get("status"),
    }


# --------------------------------------------------------------------------- paired stats
@dataclass(frozen=True)
class Paired:
    """Per-seed differences a - b of one measure, their mean and 95 % interval."""
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return float(np.mean(self.diffs)) if self.diffs else math.nan

    @property
    def half_width(self) -> float | None:
        """t(0.975, n-1) * sd / sqrt(n); None below two seeds."""
        if self.n < 2:
            return None
        return t975(self.n - 1) * float(np.std(self.diffs, ddof=1)) / math.sqrt(self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        hw = self.half_width
        return None if hw is None else (self.mean - hw, self.mean + hw)

    def sign(self) -> int | None:
        """+1 when the whole interval is above 0, -1 below, 0 when it holds 0; None without
        an interval."""
        if self.interval is None:
            return None
        lo, hi = self.interval
        return 1 if lo > 0 else -1 if hi < 0 else 0

    def text(self, fmt: str = "+.4f") -> str:
        if not self.diffs:
            return "-"
        if self.interval is None:
            return f"{self.mean:{fmt}} (1 seed)"
        lo, hi = self.interval
        return f"{self.mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def paired(runs: dict[str, dict[int, dict]], a: str, b: str, key: str) -> Paired:
    """`key` of variant a minus variant b, over the seeds both have (and both measured)."""
    seeds, diffs = [], []
    for seed in sorted(set(runs.get(a, {})) & set(runs.get(b, {}))):
        va, vb = runs[a][seed][key], runs[b][seed][key]
        if va is not None and vb is not None:
            seeds.append(seed)
            diffs.append(va - vb)
    return Paired(tuple(seeds), tuple(diffs))


def verdict(p: Paired, higher: str = "better", lower: str = "worse") -> str:
    sign = p.sign()
    if sign is None:
        return "not measured" if p.n == 0 else "one seed: no interval"
    return {1: higher, -1: lower, 0: f"not distinguishable at {p.n} seeds"}[sign]


def separation_note(n: int) -> str:
    """What n paired seeds can and cannot separate."""
    if n < 2:
        return ("With one seed there is no interval: a difference cannot be told "
                "from seed noise.")
    k = t975(n - 1) / math.sqrt(n)
    return (f"With {n} seeds the 95 % interval is the mean difference ± {t975(n - 1):.2f} "
            f"s/√{n} = ± {k:.2f} s, s being the standard deviation of the per-seed "
            f"differences: a difference is called only when it is more than {k:.1f} times "
            "that seed-to-seed spread away from 0; 'not distinguishable' means these seeds "
            "could not tell, not that the two are equal.")


# --------------------------------------------------------------------------- reading runs
@dataclass(frozen=True)
class Arm:
    """One variant as its run files describe it (config["experiment"]): its name, the
    variant it is compared with (None: a baseline), what it changes, and its group ("ladder":
    on Task 1's LeNet; "report": on the report's Model 2.1/2.2)."""
    name: str
    baseline: str | None
    changes: str
    group: str


def read_experiments(folder: Path | str) -> tuple[dict[str, dict[int, dict]], list[Arm]]:
    """{variant: {seed: measures}} of the finished (or diverged) experiment runs in
    `folder`, and their variants (ladder first, each group's baselines first)."""
    out: dict[str, dict[int, dict]] = {}
    arms: dict[str, Arm] = {}
    for path in sorted(Path(folder).glob("*_seed*.json")):
        run = load_run(path)
        config = run.get("config") or {}
        exp = config.get("experiment")
        if not exp or run.get("final") is None:
            continue
        out.setdefault(exp["variant"], {})[config["seed"]] = measures(run)
        arms[exp["variant"]] = Arm(exp["variant"], exp.get("baseline"), exp.get("changes", ""),
                                   "ladder" if config.get("model") == "lenet" else "report")
    order = sorted(arms.values(), key=lambda a: (a.group != "ladder", a.baseline is not None,
                                                 a.name))
    return out, order


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _minutes(seeds: dict) -> float | None:
    seconds = _mean(m["train_s"] for m in seeds.values())
    return None if seconds is None else seconds / 60


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _fmt(value, fmt=".4f") -> str | None:
    return None if value is None else f"{value:{fmt}}"


# --------------------------------------------------------------------------- tables
def ranked_table(variants, runs, group: str, title: str) -> Table:
    """The variants of `group` against their baselines, ranked by the mean gain in test
    accuracy within 10 epochs (what improved most first)."""
    rows = []
    for v in variants:
        if v.group != group or v.baseline is None or v.name not in runs:
            continue
        seeds = runs[v.name]
        gain = paired(runs, v.name, v.baseline, "test_acc")
        meets = sum(1 for m in seeds.values() if (m["test_acc"] or 0) >= BAR)
        rows.append((gain.mean if gain.n else -math.inf, [
            v.name, v.changes, f"{next(iter(seeds.values()))['parameters']:,}",
            str(len(seeds)), _fmt(_mean(m["test_acc"] for m in seeds.values())),
            gain.text(), verdict(gain), f"{meets} of {len(seeds)}"]))
    rows.sort(key=lambda r: -r[0])
    counts = sorted({int(row[3]) for _, row in rows})  # what these rows' seeds can separate
    baselines = sorted({v.baseline for v in variants if v.group == group and v.baseline})
    notes = [f"Baseline {b}: test accuracy {_fmt(_mean(m['test_acc'] for m in runs[b].values()))} "
             f"over {_seeds(len(runs[b]))}." for b in baselines if b in runs]
    notes += [separation_note(n) for n in counts]
    return Table(["variant", "changes", "parameters", "seeds", "test acc",
                  "Δ test acc [95 % CI]", "verdict", f"test ≥ {BAR:.2f}"],
                 [row for _, row in rows], title=title, notes=notes)


def speed_table(variants, runs) -> Table:
    """How fast and how smoothly each variant learns (means over its seeds), and the paired
    differences from its baseline."""
    rows = []
    for v in variants:
        if v.name not in runs:
            continue
        seeds = runs[v.name]
        speed = paired(runs, v.name, v.baseline, "val_acc_2") if v.baseline else None
        rough = paired(runs, v.name, v.baseline, "roughness") if v.baseline else None
        first = [m["first_070"] for m in seeds.values()]
        rows.append([v.name, str(len(seeds)),
                     _fmt(_mean(m["val_acc_2"] for m in seeds.values())),
                     _fmt(_mean(m["val_acc_5"] for m in seeds.values())),
                     _fmt(_mean(first), ".1f") if None not in first else
                     f"{sum(f is None for f in first)} of {len(first)} never",
                     _fmt(_mean(m["roughness"] for m in seeds.values())),
                     speed.text() if speed else "(baseline)",
                     rough.text() if rough else "(baseline)",
                     _fmt(_minutes(seeds), ".1f")])
    keys = ("val_acc_2", "val_acc_5", "first_070", "roughness")
    return Table(["variant", "seeds", *(MEASURES[k].short for k in keys),
                  "Δ val acc at epoch 2 [95 % CI]", "Δ roughness [95 % CI]", "min/run"], rows,
                 title="Learning speed and smoothness within 10 epochs (means over seeds; Δ: "
                       "against the baseline, same seed)",
                 notes=[f"{MEASURES[k].short}: {MEASURES[k].label}." for k in keys]
                 + ["min/run: training time of one run on the machine its runs record."])


# Each claim of the original report's section 2.5, and the comparisons that test it:
# (a, b, measure, expected sign of a - b: +1, -1, or 0 for "no difference").
CLAIMS = [
    ("3x3 filters gave higher accuracy than 5x5",
     [("model22", "model22-5x5", "test_acc", 1), ("lenet-3x3", "lenet", "test_acc", 1)]),
    ("no clear answer on the number of channels",
     [("lenet-half", "lenet", "test_acc", 0), ("lenet-double", "lenet", "test_acc", 0)]),
    ("Xavier initialization sped learning up",
     [("model21", "model21-default-init", "val_acc_2", 1),
      ("lenet-xavier", "lenet", "val_acc_2", 1)]),
    ("Model 2.1 is unstable compared with Model 2.2",
     [("model21", "model22", "roughness", 1)]),
    ("... perhaps because of SGD against Adam",
     [("model21", "model21-adam", "roughness", 1), ("lenet", "lenet-adam", "roughness", 1)]),
    ("dropout slowed learning",
     [("model22-p0", "model22", "val_acc_2", 1), ("model22-p0.1", "model22", "val_acc_2", 1),
      ("lenet", "lenet-dropout", "val_acc_2", 1)]),
    ("... but gave 'slow and steady' curves",
     [("model22-p0", "model22", "roughness", 1), ("lenet", "lenet-dropout", "roughness", 1)]),
]


def claim_verdict(p: Paired, expected: int, a: str = "", b: str = "") -> str:
    sign = p.sign()
    if sign is None:
        return (f"not measured: python task2_experiments.py --only {a} {b}" if p.n == 0
                else "one seed: no interval")
    if expected == 0:
        return (f"consistent: not distinguishable at {p.n} seeds" if sign == 0 else
                "does not hold: a difference")
    if sign == 0:
        return f"not distinguishable at {p.n} seeds"
    return "supported" if sign == expected else "contradicted"


def claims_table(runs) -> Table:
    rows = []
    for claim, tests in CLAIMS:
        for a, b, key, expected in tests:
            p = paired(runs, a, b, key)
            want = {1: "> 0", -1: "< 0", 0: "≈ 0"}[expected]
            rows.append([claim, f"{a} − {b}", MEASURES[key].short, want,
                         p.text("+.4f") if p.n else None,
                         str(p.n), claim_verdict(p, expected, a, b)])
            claim = ""
    return Table(["the report's claim", "compared (same seed)", "measure", "expected",
                  "measured a − b [95 % CI]", "seeds", "verdict"], rows,
                 title="The original report's claims (its section 2.5), measured",
                 notes=[f"{m.short}: {m.label}." for m in MEASURES.values()
                        if m.key in ("test_acc", "val_acc_2", "roughness")]
                 + ["Roughness stands for the report's 'unstable' (higher) and 'slow and "
                    "steady' (lower)."])


def ten_epoch_table(runs, variants) -> Table:
    """The report's two recipes at the handout's 10 epochs: test accuracy of the
    best-validation check and at epoch 10, over seeds, and whether they meet the bar."""
    rows = []
    for v in variants:
        if v.baseline is not None or v.group != "report" or v.name not in runs:
            continue
        seeds = runs[v.name]
        best = [m["test_acc"] for m in seeds.values() if m["test_acc"] is not None]
        last = [m["test_acc_10"] for m in seeds.values() if m["test_acc_10"] is not None]

        def spread(values):
            if not values:
                return None
            return (f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}" if len(values) > 1
                    else f"{values[0]:.4f}")
        rows.append([v.name, v.changes, str(len(seeds)), spread(best), spread(last),
                     f"{sum(1 for x in best if x >= BAR)} of {len(best)}"])
    return Table(["recipe", "what", "seeds", "test acc, best-validation check",
                  "test acc at epoch 10", f"seeds ≥ {BAR:.2f}"], rows,
                 title="The 10-epoch bar: the report's recipes trained for 10 epochs",
                 notes=["Mean ± standard deviation over seeds. The best check is chosen by "
                        "the recipe's validation measure; the test split chooses nothing."])


def experiment_tables(folder: Path | str) -> tuple[list[Table], dict, list[Arm]]:
    """The tables of Task 2e from the runs in `folder`, the runs' measures and their
    variants."""
    runs, variants = read_experiments(folder)
    tables = [ranked_table(variants, runs, "ladder",
                           "The handout's suggestions on Task 1's LeNet, ranked by gain in "
                           "test accuracy within 10 epochs"),
              ranked_table(variants, runs, "report",
                           "The report's own models: each change against the recipe, ranked"),
              speed_table(variants, runs), claims_table(runs), ten_epoch_table(runs, variants)]
    return tables, runs, variants


# --------------------------------------------------------------------------- figure
def draw_gains(runs, variants, path: Path) -> list[Path]:
    """Each variant's mean gain in test accuracy over its baseline with its 95 % interval
    (PNG and PDF)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [(v, paired(runs, v.name, v.baseline, "test_acc")) for v in variants
             if v.baseline is not None and v.name in runs]
    items = [(v, p) for v, p in items if p.n]
    if not items:
        return []
    items.sort(key=lambda vp: (vp[0].group != "ladder", vp[1].mean))
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(items) + 1.6))
    for y, (v, p) in enumerate(items):
        color = "tab:blue" if v.group == "ladder" else "tab:orange"
        err = None if p.half_width is None else [[p.half_width], [p.half_width]]
        ax.errorbar(p.mean, y, xerr=err, fmt="o", color=color, capsize=3)
        ax.scatter(p.diffs, [y] * p.n, s=10, color=color, alpha=0.4, zorder=3)
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_yticks(range(len(items)),
                  [f"{v.name} (vs {v.baseline}, {_seeds(p.n)})" for v, p in items])
    ax.set_xlabel("test accuracy minus the baseline's, same seed (mean, 95 % interval; "
                  "dots: seeds)", fontsize=8)
    ax.set_title("Task 2e: gain of each change within 10 epochs\n(blue: on Task 1's LeNet; "
                 "orange: on the report's Model 2.1/2.2)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    paths = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=130)
    plt.close(fig)
    return paths


def write_experiment_tables(folder: Path | str) -> list[Path]:
    """experiments.md and experiments.tex (the tables) and experiments_gain.png/.pdf in
    `folder`; prints the Markdown."""
    folder = Path(folder)
    tables, runs, variants = experiment_tables(folder)
    if not runs:
        print(f"no finished experiment runs in {folder} yet: no tables")
        return []
    markdown = "\n".join(to_markdown(t) for t in tables)
    written = [folder / "experiments.md", folder / "experiments.tex"]
    atomic_write_text(written[0], markdown)
    atomic_write_text(written[1], "\n".join(to_latex(t) for t in tables))
    written += draw_gains(runs, variants, folder / "experiments_gain")
    print(markdown)
    print("wrote " + ", ".join(map(str, written)))
    return written
