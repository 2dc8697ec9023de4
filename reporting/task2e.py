"""Task 2e's answer from the experiments' run files (task2_experiments.py, in one folder or
several): what each variant measured within the handout's 10 epochs, each variant against its
baseline of the same seed (paired differences, a 95 % interval over seeds, the paired t-test,
a verdict), the variants ranked by their gain in test accuracy, the original report's claims
held against the measures that test them, and the facts in words (its figure of the gains:
`reporting.figures.draw_gains`).

Every number comes from the histories in the run JSONs: the test split is read at the check
the validation split chose (it never chooses anything). A variant's seed is paired only with
its baseline's run of that seed in the same `setting` (device, CPU, precision, threads). The
intervals are Student's t over the per-seed differences (`reporting.paired`, without scipy),
with the sample standard deviation; "not distinguishable" means the seeds could not tell, and
each row says the smallest gain its seeds could have told from zero. The ladder's verdicts
(every LeNet change against one baseline) are corrected by Holm's step-down method.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reporting.paired import (
    ALPHA,
    claim_verdict,
    holm,
    holm_levels,
    paired,
    separation_note,
    unpaired_note,
    verdict,
)
from reporting.table import Table
from training.errors import UserError
from training.recipes import BAR_ACCURACY, BAR_EPOCHS
from training.record import Run, format_mean_std, spread_note

SPEED_EPOCH = 2.0   # learning speed: validation accuracy at this epoch
SPEED_TARGET = 0.70  # ... and the first epoch that reaches this validation accuracy


# --------------------------------------------------------------------------- measures
# Roughness, the report's "unstable" (higher) and "slow and steady": defined here once.
ROUGHNESS = ("the sum of the rises of the validation loss from one check to the next (two "
             "checks an epoch), from the first check to the last within 10 epochs, divided by "
             "the epochs between those two checks: rises per epoch. A validation loss that only "
             "falls has roughness 0, however fast it falls; higher is rougher")


def roughness(history: Sequence[dict]) -> float | None:
    """`ROUGHNESS` of a run's checks (in the order of their epochs; those after 10 epochs left
    out); None below two checks."""
    checks = [h for h in history if h["epoch"] <= BAR_EPOCHS + 0.01]
    if len(checks) < 2 or checks[-1]["epoch"] <= checks[0]["epoch"]:
        return None
    losses = [h["val_loss"] for h in checks]
    rises = sum(max(0.0, b - a) for a, b in itertools.pairwise(losses))
    return rises / (checks[-1]["epoch"] - checks[0]["epoch"])


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
    Measure("roughness", "roughness", ROUGHNESS),
    Measure("test_acc_10", "test acc at epoch 10", "test accuracy at the check of epoch 10"),
)}


def _at(history: list[dict], epoch: float) -> dict | None:
    """The check nearest to `epoch`, within a quarter of an epoch (checks fall at whole
    steps: epoch 2 of 703 batches an epoch is checked at 1.9972); None when there is none."""
    near = [h for h in history if abs(h["epoch"] - epoch) <= 0.25]
    return min(near, key=lambda h: abs(h["epoch"] - epoch)) if near else None


def setting(run: Run) -> str:
    """Where a run computed ('cpu (AMD EPYC), bf16, 1 thread'), and each resume elsewhere."""
    def where(env: dict) -> str:
        chip = env.get("cpu") if run.device_type == "cpu" else env.get("gpu")
        n = env.get("threads", "?")
        return f"{run.device_type}{f' ({chip})' if chip else ''}, {run.precision}, {n} thread" + (
            "" if n == 1 else "s")
    places = dict.fromkeys(where(env) for env in [run.environment, *run.resumed_on])
    return "; resumed on ".join(places)


def _test_at_best(run: Run, best: dict | None) -> float | None:
    """The test accuracy of the best-validation check: the check's own record, else the
    run's final test evaluation when it is of that check's weights (a run that read the
    test split only at the end)."""
    if best is None:
        return None
    if best.get("test_accuracy") is not None:
        return best["test_accuracy"]
    if run.best_epoch is not None and abs(run.best_epoch - best["epoch"]) < 1e-6:
        return run.accuracy("test")
    return None


def measures(run: Run) -> dict[str, float | None]:
    """The measures of one run, from its history (None where it did not get that far), and
    its `setting`."""
    history = run.history
    within = [h for h in history if h["epoch"] <= BAR_EPOCHS + 0.01]
    metric = run.stop_metric
    best = None
    if within:
        pick = min if metric == "val_loss" else max
        best = pick(within, key=lambda h: h[metric])
    at2, at5 = _at(history, SPEED_EPOCH), _at(history, 5.0)
    last = _at(history, BAR_EPOCHS)
    reached = [h["epoch"] for h in within if h["val_accuracy"] >= SPEED_TARGET]
    return {
        "test_acc": _test_at_best(run, best),
        "val_acc_2": at2["val_accuracy"] if at2 else None,
        "val_acc_5": at5["val_accuracy"] if at5 else None,
        "first_070": reached[0] if reached else None,
        "roughness": roughness(history),
        "test_acc_10": last.get("test_accuracy") if last else None,
        "parameters": run.parameters,
        "train_s": run.train_seconds,
        "status": run.status,
        "setting": setting(run),
    }


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


def folders_of(folders: Path | str | Iterable[Path | str]) -> list[Path]:
    """One folder or several, as a list of Paths."""
    if isinstance(folders, (str, Path)):
        return [Path(folders)]
    return [Path(f) for f in folders]


def read_experiments(folders: Path | str | Iterable[Path | str]
                     ) -> tuple[dict[str, dict[int, dict]], list[Arm]]:
    """{variant: {seed: measures}} of the finished (or diverged) experiment runs in one
    folder or several (a folder not made yet is skipped), and their variants (ladder first,
    each group's baselines first). A run is made once: a variant's seed in two files is a
    UserError naming both."""
    out: dict[str, dict[int, dict]] = {}
    arms: dict[str, Arm] = {}
    where: dict[tuple[str, int], Path] = {}
    for folder in folders_of(folders):
        for path in sorted(folder.glob("*_seed*.json")) if folder.is_dir() else []:
            run = Run.load(path)
            exp = run.experiment
            if not exp or not run.finished:
                continue
            key = (exp["variant"], run.seed)
            if key in where:
                raise UserError(f"{key[0]} seed {key[1]} has two run files, {where[key]} and "
                                f"{path}: a run is made once; keep one of them")
            where[key] = path
            out.setdefault(exp["variant"], {})[run.seed] = measures(run)
            arms[exp["variant"]] = Arm(exp["variant"], exp.get("baseline"),
                                       exp.get("changes", ""),
                                       "ladder" if run.model == "lenet" else "report")
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
# The ranked tables' columns (facts() reads them by these names).
GAIN = "Δ test acc, points [95 % CI]"
HALF = "half-width, points"
P_VALUE = "p (paired t)"
HALF_NOTE = ("half-width: t(0.975, n−1) · s/√n in points of test accuracy, s the sample "
             "standard deviation of the n per-seed differences: the smallest gain these seeds "
             "could tell from zero (95 %).")


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def ranked_table(variants, runs, group: str, title: str) -> Table:
    """The variants of `group` against their baselines, ranked by the mean gain in test
    accuracy within 10 epochs (what improved most first). Each row gives the 95 % interval's
    half-width (the smallest gain its seeds could tell from zero) and the paired t-test's
    p-value. The ladder's verdicts (every change against one baseline, `lenet`) are
    corrected for the number of changes by Holm's step-down method; the report's models'
    verdicts are each row's own 95 % interval."""
    corrected = group == "ladder"
    arms = [v for v in variants if v.group == group and v.baseline is not None
            and v.name in runs]
    gains = {v.name: paired(runs, v.name, v.baseline, "test_acc") for v in arms}
    tested = {name: p.p_value for name, p in gains.items() if p.p_value is not None}
    adjusted, levels = holm(tested), holm_levels(tested)
    rows = []
    for v in arms:
        seeds, gain = runs[v.name], gains[v.name]
        meets = sum(1 for m in seeds.values() if (m["test_acc"] or 0) >= BAR_ACCURACY)
        p_cell, text = None, verdict(gain)
        if gain.p_value is not None:
            p_cell = _p_text(gain.p_value)
            if corrected:
                p_cell += f"; Holm {_p_text(adjusted[v.name])}"
                size = gain.half_width_at(levels[v.name])
                text = verdict(gain, adjusted[v.name] < ALPHA, size)
                if adjusted[v.name] >= ALPHA and abs(gain.mean) > size:
                    text = ("not distinguishable: Holm's step-down stopped at a change with a "
                            "smaller p-value")
        rows.append((gain.mean if gain.n else -math.inf, [
            v.name, v.changes, f"{next(iter(seeds.values()))['parameters']:,}",
            str(gain.n), _fmt(_mean(m["test_acc"] for m in seeds.values())),
            gain.text("+.2f", 100), _fmt(None if gain.half_width is None
                                         else 100 * gain.half_width, ".2f"),
            p_cell, text, f"{meets} of {len(seeds)}"]))
    rows.sort(key=lambda r: -r[0])
    counts = sorted({int(row[3]) for _, row in rows})  # what these rows' seeds can separate
    notes = [baseline_note(runs, b, arms) for b in
             sorted({v.baseline for v in arms}) if b in runs]
    notes += [HALF_NOTE] if rows else []
    if corrected and tested:
        m = len(tested)
        notes.append(
            f"Verdicts corrected for comparing {m} change{'s' if m > 1 else ''} with one "
            "baseline: Holm's step-down method on the paired t-tests' two-sided p-values (the "
            f"k-th smallest is held to 0.05/({m} − k + 1), and the first that fails stops "
            "the rest; 'Holm' is the adjusted p-value, called below 0.05). A change not told "
            "apart names the half-width at its own Holm level, wider than the 95 % one.")
    elif tested:
        notes.append("Verdicts: each row's own 95 % interval (whether it holds 0), not "
                     "corrected for the number of rows.")
    notes += [separation_note(n) for n in counts]
    notes += [note for v in arms if (note := unpaired_note(v.name, gains[v.name]))]
    return Table(["variant", "changes", "parameters", "seeds", "test acc", GAIN, HALF,
                  P_VALUE, "verdict", f"test ≥ {BAR_ACCURACY:.2f}"],
                 [row for _, row in rows], title=title, notes=notes)


def by_setting(seeds: dict[int, dict]) -> dict[str, dict[int, dict]]:
    """A variant's {seed: measures} split by `setting`, in the order of their first seed: a
    mean is taken within one setting, as a pair is made within one."""
    out: dict[str, dict[int, dict]] = {}
    for seed in sorted(seeds):
        out.setdefault(seeds[seed].get("setting") or "?", {})[seed] = seeds[seed]
    return out


def baseline_note(runs, name: str, arms: Sequence[Arm] = ()) -> str:
    """'The baseline, lenet: test accuracy 0.7226 (mean over 5 seeds; cpu, bf16, 1 thread).'
    A baseline run in several settings has a mean for each, with the changes (of `arms`)
    that have runs in that setting."""
    groups = by_setting(runs[name])
    parts = []
    for where, seeds in groups.items():
        beside = [a.name for a in arms if a.baseline == name and a.name in runs
                  and any(m.get("setting") == where for m in runs[a.name].values())]
        parts.append(f"{_fmt(_mean(m['test_acc'] for m in seeds.values()))} ("
                     + (f"mean over {_seeds(len(seeds))}" if len(seeds) > 1 else "1 seed")
                     + f"; {where}"
                     + (f"; beside {', '.join(beside)}" if beside and len(groups) > 1 else "")
                     + ")")
    if len(parts) == 1:
        return f"The baseline, {name}: test accuracy {parts[0]}."
    return (f"The baseline, {name}: test accuracy {', '.join(parts[:-1])} and {parts[-1]}; each "
            "change is paired with the baseline's runs of its own setting.")


SETTING_ROWS = ("A variant run in more than one setting (device, CPU, precision, threads) has a "
                "row for each: its means and Δ are those of that row's seeds.")


def speed_table(variants, runs) -> Table:
    """How fast and how smoothly each variant learns (means over its seeds), and the paired
    differences from its baseline; a variant run in several settings has a row for each."""
    rows, unpaired = [], []
    for v in (v for v in variants if v.name in runs):
        groups = by_setting(runs[v.name])
        for where, seeds in groups.items():  # one row per setting: a mean within one
            within = {**runs, v.name: seeds}
            speed = paired(within, v.name, v.baseline, "val_acc_2") if v.baseline else None
            rough = paired(within, v.name, v.baseline, "roughness") if v.baseline else None
            first = [m["first_070"] for m in seeds.values()]
            rows.append([f"{v.name} ({where})" if len(groups) > 1 else v.name, str(len(seeds)),
                         _fmt(_mean(m["val_acc_2"] for m in seeds.values())),
                         _fmt(_mean(m["val_acc_5"] for m in seeds.values())),
                         _fmt(_mean(first), ".1f") if None not in first else
                         f"{sum(f is None for f in first)} of {len(first)} never",
                         _fmt(_mean(m["roughness"] for m in seeds.values())),
                         speed.text() if speed else "(baseline)",
                         rough.text() if rough else "(baseline)",
                         _fmt(_minutes(seeds), ".1f")])
        if v.baseline and (note := unpaired_note(v.name, paired(runs, v.name, v.baseline,
                                                                  "val_acc_2"))):
            unpaired.append(note)
    keys = ("val_acc_2", "val_acc_5", "first_070", "roughness")
    return Table(["variant", "seeds", *(MEASURES[k].short for k in keys),
                  "Δ val acc at epoch 2 [95 % CI]", "Δ roughness [95 % CI]", "min/run"], rows,
                 title="Learning speed and smoothness within 10 epochs (means over seeds; Δ: "
                       "against the baseline, same seed)",
                 notes=[f"{MEASURES[k].short}: {MEASURES[k].label}." for k in keys]
                 + ["min/run: training time of one run on the machine its runs record."]
                 + ([SETTING_ROWS] if any(len(by_setting(s)) > 1 for s in runs.values()) else [])
                 + unpaired)


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


def claims_table(runs) -> Table:
    rows, unpaired = [], {}
    for claim, tests in CLAIMS:
        for a, b, key, expected in tests:
            p = paired(runs, a, b, key)
            note = unpaired_note(f"{a} − {b}", p)
            if note:
                unpaired[note] = None
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
                 + [("Roughness stands for the report's 'unstable' (higher) and 'slow and "
                    "steady' (lower).")] + list(unpaired))


def ten_epoch_table(runs, variants) -> Table:
    """The report's two recipes at the handout's 10 epochs: test accuracy of the
    best-validation check and at epoch 10, over seeds, and whether they meet the bar."""
    rows, counts = [], []
    for v in variants:
        if v.baseline is not None or v.group != "report" or v.name not in runs:
            continue
        seeds = runs[v.name]
        best = [m["test_acc"] for m in seeds.values() if m["test_acc"] is not None]
        last = [m["test_acc_10"] for m in seeds.values() if m["test_acc_10"] is not None]

        rows.append([v.name, v.changes, str(len(seeds)),
                     format_mean_std(best, 4) if best else None,
                     format_mean_std(last, 4) if last else None,
                     f"{sum(1 for x in best if x >= BAR_ACCURACY)} of {len(best)}"])
        counts.append(len(seeds))
    note = spread_note(counts)
    return Table(["recipe", "what", "seeds", "test acc, best-validation check",
                  "test acc at epoch 10", f"seeds ≥ {BAR_ACCURACY:.2f}"], rows,
                 title="The 10-epoch bar: the report's recipes trained for 10 epochs",
                 notes=([note] if note else [])
                 + [("The best check is chosen by the recipe's validation measure; the test "
                    "split chooses nothing.")])


def experiment_tables(folders: Path | str | Iterable[Path | str]
                      ) -> tuple[list[Table], dict, list[Arm]]:
    """The tables of Task 2e from the runs in one folder or several (`read_experiments`),
    the runs' measures and their variants: the ladder ranked, the report's models ranked,
    speed and roughness, the report's claims, the 10-epoch bar."""
    runs, variants = read_experiments(folders)
    tables = [ranked_table(variants, runs, "ladder",
                           "The handout's suggestions on Task 1's LeNet, ranked by gain in "
                           "test accuracy within 10 epochs"),
              ranked_table(variants, runs, "report",
                           "The report's own models: each change against the recipe, ranked"),
              speed_table(variants, runs), claims_table(runs), ten_epoch_table(runs, variants)]
    return tables, runs, variants


# --------------------------------------------------------------------------- in words
def facts(ladder: Table, claims: Table) -> list[str]:
    """Task 2e's facts as three to five sentences, read from the ladder's ranked table (in
    its order: the first row told apart as better helped most) and the claims table alone:
    the baseline (the table's own note), what helped most, what hurt, what could not be told
    apart and below what size, and what the original report's claims came to. Each sentence
    quotes the tables' cells; none says more than they do."""
    sentences = [note for note in ladder.notes if note.startswith("The baseline, ")][:1]
    rows = [dict(zip(ladder.header, row)) for row in ladder.rows]
    if not rows:
        return sentences
    base = next((n.removeprefix("The baseline, ").split(":")[0] for n in sentences),
                "its baseline")

    def gain(row) -> str:
        return (f"{row['variant']} ({row['changes']}), {row[GAIN].split(' [')[0]} points "
                f"[95 % interval {row[GAIN].split(' [')[1].rstrip(']')}]"
                if " [" in (row[GAIN] or "") else f"{row['variant']}, {row[GAIN]} points")

    better = [r for r in rows if r["verdict"] == "better"]
    worse = [r for r in rows if r["verdict"] == "worse"]
    unclear = [r for r in rows if (r["verdict"] or "").startswith("not distinguishable")]
    if better:
        sentences.append(f"Helped most: {gain(better[0])} of test accuracy over {base} at "
                         f"{better[0]['seeds']} seeds (p {better[0][P_VALUE]})"
                         + (f"; also better: {', '.join(r['variant'] for r in better[1:])}"
                            if better[1:] else "") + ".")
    else:
        sentences.append(f"No change was told apart as a gain over {base}; the largest mean "
                         f"gain was {gain(rows[0])} (p {rows[0][P_VALUE]}).")
    if worse:
        sentences.append("Hurt: " + "; ".join(
            f"{gain(r)} (p {r[P_VALUE]})" for r in reversed(worse)) + ".")
    else:
        sentences.append(f"No change was told apart as a loss against {base}.")
    if unclear:
        sentences.append(f"Not told apart from {base}: " + "; ".join(
            f"{r['variant']} ({r[GAIN].split(' [')[0]} points: "
            f"{r['verdict'].removeprefix('not distinguishable: ')})" for r in unclear) + ".")
    kinds: dict[str, list[str]] = {}
    claim = ""
    for row in claims.rows:
        claim = row[0] or claim
        text = row[-1] or ""
        kind = ("supported" if text == "supported" else
                "contradicted" if text in ("contradicted", "does not hold: a difference") else
                "not measured" if text.startswith("not measured") else
                "with one seed (no interval)" if text.startswith("one seed") else
                "not told apart")
        kinds.setdefault(kind, []).append(f"'{claim}': {row[1]}, {row[2]}")
    if kinds:
        parts = [f"{len(kinds[k])} {k}" + (f" ({'; '.join(kinds[k])})"
                                          if k in ("supported", "contradicted") else "")
                 for k in ("supported", "contradicted", "not told apart",
                           "with one seed (no interval)", "not measured") if k in kinds]
        sentences.append(f"The original report's claims, in {len(claims.rows)} comparisons: "
                         + ", ".join(parts) + ".")
    return sentences
