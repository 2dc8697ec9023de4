"""Which early-stopping rule would have kept the best checkpoint? Replays candidate rules over
the validation histories of saved runs; nothing is trained.

    python scripts/stopping_replay.py results --model model21
    python scripts/stopping_replay.py results/h200-2026-11-27/model21-40ep --markdown /tmp/r.md

Arguments are run JSON files or folders (searched recursively; JSON files that are not runs,
such as benchmark.json, are skipped there). A run's history has two checks an epoch, each with
epoch, val_loss and val_accuracy. The candidate rules:

- "METRIC, patience P": stop after P checks without a new best of METRIC (val_loss: strictly
  lower; val_accuracy: strictly higher), keep the best checkpoint by METRIC up to there: the
  Trainer's own rule (`--early-stop-metric METRIC --patience P`), P in 4, 6, 8, 10, 12, 16, 20;
- "METRIC, no early stopping": the whole history, the best checkpoint by METRIC;
- the 2019 course code's rule (kristaha/TDT4265, Assignment_3/code/starter_code.py): stop when
  the last 4 validation losses never decrease (the loss rose or stayed three checks in a row)
  and report the check 4 back (`VALIDATION_ACC[-early_stop_count]`; the course printed that
  check when training ran to its end, too). Replayed on every check (two an epoch) and on
  every second one (one version of the course file had the in-epoch check commented out).

A history is full when the run's status is "finished" (it ran to its epoch cap) on all the
data, with its model's default recipe (a `--subset` run, a `--run-suffix` variant and a run
of fewer epochs than its task's default are listed, never judged). On a full history a rule HOLDS when the
validation accuracy of the checkpoint it keeps is within --tolerance (default 0.003) of that
of the best checkpoint of the whole history by the same metric (val_loss for the course rule). A truncated history (early_stopped, running,
interrupted, diverged) stops where the run stopped, so its whole-history best is unknown: the
replay says where a rule stops and what it keeps when that happens within the recorded checks,
and "-" for whether it holds. The rule to choose is judged on full histories only: per model,
the earliest-stopping rule (smallest mean stop epoch) that holds on every full history, once
among the val_loss rules and once among the val_accuracy rules.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from training.cli import ArgumentParser, add_debug_arg, run_cli
from training.errors import UserError
from training.recipes import RECIPES, default_epochs
from training.record import Run
from training.storage import atomic_write_text

METRICS = ("val_loss", "val_accuracy")
PATIENCES = (4, 6, 8, 10, 12, 16, 20)
TOLERANCE = 0.003
COURSE_COUNT = 4  # the course's early_stop_count
FULL_STATUS = "finished"
MODEL_LABELS = {key: recipe.label for key, recipe in RECIPES.items()}  # in the table's order


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str               # what picks the kept checkpoint (val_loss for the course rule)
    patience: int | None      # None: no early stopping (or the course rule)
    course: bool = False
    per_epoch: bool = False   # course rule on every second check only


def candidate_rules() -> list[Rule]:
    rules = []
    for metric in METRICS:
        rules += [Rule(f"{metric}, patience {p}", metric, p) for p in PATIENCES]
        rules.append(Rule(f"{metric}, no early stopping", metric, None))
    rules.append(Rule("course rule (4 val losses without a decrease; checks 2/epoch)",
                      "val_loss", None, course=True))
    rules.append(Rule("course rule, checks 1/epoch", "val_loss", None, course=True,
                      per_epoch=True))
    return rules


# --------------------------------------------------------------------------- the rules
def course_stop(val_losses: list[float], count: int = COURSE_COUNT) -> int | None:
    """Index of the check at which the course rule stops, or None if it never does."""
    for i in range(count - 1, len(val_losses)):
        window = val_losses[i - count + 1:i + 1]
        if all(b >= a for a, b in itertools.pairwise(window)):
            return i
    return None


def _better(metric: str, value: float, best: float | None) -> bool:
    """The Trainer's test: strictly better; NaN is never better, anything beats a NaN best."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value < best if metric == "val_loss" else value > best


def patience_stop(values: list[float], metric: str, patience: int | None
                  ) -> tuple[int | None, int | None]:
    """(index of the check where the rule stops, or None if it does not within `values`;
    index of the best check by `metric` up to there, or up to the end)."""
    best = best_i = None
    since = 0
    for i, value in enumerate(values):
        if _better(metric, value, best):
            best, best_i, since = value, i, 0
        else:
            since += 1
        if patience and since >= patience:
            return i, best_i
    return None, best_i


def replay(history: list[dict], rule: Rule) -> tuple[int | None, int | None]:
    """(stop, kept): indices into `history` of the check where `rule` stops (None: not within
    the history) and of the checkpoint it keeps (for a rule that does not stop: the one it
    keeps at the history's end)."""
    if not rule.course:
        return patience_stop([h[rule.metric] for h in history], rule.metric, rule.patience)
    index = list(range(1, len(history), 2)) if rule.per_epoch else list(range(len(history)))
    stop = course_stop([history[i]["val_loss"] for i in index])
    end = stop if stop is not None else len(index) - 1
    kept = end - COURSE_COUNT + 1
    return (None if stop is None else index[stop]), (index[kept] if kept >= 0 else None)


# --------------------------------------------------------------------------- judging
@dataclass
class Outcome:
    stop_epoch: float | None   # None: does not stop within a truncated history
    kept_epoch: float | None
    kept_acc: float | None
    delta: float | None        # kept val acc - that of the whole history's best (same metric)
    delta_max: float | None    # kept val acc - the history's highest val acc
    holds: bool | None         # None: unknown (truncated history)


@dataclass
class History:
    label: str
    model: str
    status: str
    history: list[dict]
    subset: int | None = None  # --subset N: a quick look on part of the data, never judged
    variant: str | None = None  # not the model's default recipe: why (never judged)

    @property
    def full(self) -> bool:
        return self.status == FULL_STATUS and self.subset is None and self.variant is None


def judge(h: History, rule: Rule, tolerance: float = TOLERANCE) -> Outcome:
    stop, kept = replay(h.history, rule)
    if stop is None and not h.full:  # the run ended before the rule would have stopped it
        return Outcome(None, None, None, None, None, None)
    stop_epoch = h.history[stop if stop is not None else -1]["epoch"]
    if kept is None:  # fewer checks than the course rule looks back
        return Outcome(stop_epoch, None, None, None, None, False if h.full else None)
    kept_acc = h.history[kept]["val_accuracy"]
    if not h.full:
        return Outcome(stop_epoch, h.history[kept]["epoch"], kept_acc, None, None, None)
    _, whole = patience_stop([c[rule.metric] for c in h.history], rule.metric, None)
    delta = kept_acc - h.history[whole]["val_accuracy"]
    delta_max = kept_acc - max(c["val_accuracy"] for c in h.history)
    return Outcome(stop_epoch, h.history[kept]["epoch"], kept_acc, delta, delta_max,
                   delta >= -tolerance - 1e-12)


@dataclass
class RuleResult:
    rule: Rule
    outcomes: list[Outcome]
    holds_on_full: bool | None   # None: no full history
    mean_stop: float | None      # over the full histories


def replay_model(histories: list[History], tolerance: float = TOLERANCE) -> list[RuleResult]:
    results = []
    for rule in candidate_rules():
        outcomes = [judge(h, rule, tolerance) for h in histories]
        full = [o for h, o in zip(histories, outcomes) if h.full]
        holds = all(o.holds for o in full) if full else None
        mean_stop = sum(o.stop_epoch for o in full) / len(full) if full else None
        results.append(RuleResult(rule, outcomes, holds, mean_stop))
    return results


def earliest_holding(results: list[RuleResult], metric: str) -> RuleResult | None:
    """The rule with `metric` that holds on every full history and stops earliest on average
    (ties: the smaller patience, no early stopping last)."""
    holding = [r for r in results if r.rule.metric == metric and r.holds_on_full]
    if not holding:
        return None
    return min(holding, key=lambda r: (r.mean_stop, r.rule.patience or math.inf))


# --------------------------------------------------------------------------- reading runs
def collect(paths: list[str]) -> list[History]:
    """Every run under `paths` (files or folders), labelled by its path inside the folder."""
    histories = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            files = sorted(path.rglob("*.json"))
            found = []
            for f in files:
                try:
                    run = Run.load(f)
                except UserError:
                    continue  # not a run: benchmark.json and the like
                found.append(_history(run, f, f.relative_to(path).as_posix()[:-len(".json")]))
            if not found:
                raise UserError(f"no run JSON files under {path}; give a folder holding the "
                                "runs the task scripts wrote, or their JSON files")
            histories += found
        elif path.is_file() or not path.exists():
            histories.append(_history(Run.load(path), path, path.name.removesuffix(".json")))
        else:
            raise UserError(f"{path} is neither a file nor a folder")
    return histories


def _history(run: Run, path: Path, label: str) -> History:
    model, history = run.model, run.history
    if not model or any(
            not isinstance(c, dict) or not {"epoch", "val_loss", "val_accuracy"} <= set(c)
            for c in history):
        raise UserError(f"{path} is not a run of this project's Trainer (it needs "
                        "config.model and a history of checks with epoch, val_loss and "
                        "val_accuracy)")
    args = run.args
    epochs, default = run.epochs, default_epochs(run.config)
    experiment = (run.config.get("experiment") or {}).get("variant")
    variant = (f"Task 2e experiment {experiment}" if experiment else
               f"--run-suffix {args['run_suffix']}: a variant" if args.get("run_suffix") else
               f"{epochs} of its task's {default} epochs" if epochs and default and
               epochs < default else None)
    return History(label, model, run.status, history, args.get("subset"), variant)


# --------------------------------------------------------------------------- output
def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def cell(o: Outcome) -> str:
    if o.stop_epoch is None:
        return "does not stop before the run's end"
    holds = {True: "yes", False: "NO", None: "-"}[o.holds]
    return (f"{o.stop_epoch:.1f} / {_f(o.kept_epoch, '.1f')}: {_f(o.kept_acc, '.4f')} / "
            f"{_f(o.delta, '+.4f')} / {_f(o.delta_max, '+.4f')} / {holds}")


def model_markdown(model: str, histories: list[History], tolerance: float = TOLERANCE) -> str:
    results = replay_model(histories, tolerance)
    n_full = sum(h.full for h in histories)
    lines = [(f"### {MODEL_LABELS.get(model, model)} (`{model}`): {len(histories)} "
             f"histor{'y' if len(histories) == 1 else 'ies'}, {n_full} full"), ""]
    for h in histories:
        c = h.history[-1] if h.history else {}
        lines.append(f"- `{h.label}`: {h.status}, {len(h.history)} checks to epoch "
                     f"{_f(c.get('epoch'), '.1f')}, highest val acc "
                     f"{_f(max((x['val_accuracy'] for x in h.history), default=None), '.4f')}"
                     + ("" if h.full else f" (--subset {h.subset}: a quick look, not judged)"
                        if h.subset is not None else f" ({h.variant}, not judged)"
                        if h.variant else " (truncated: whole-history best unknown)"))
    lines += ["", ("Each cell: stop epoch / kept checkpoint's epoch: its val acc / Δ to the whole "
              "history's best checkpoint by the same metric / Δ to the history's highest val acc "
              f"/ holds (within {tolerance})"), "",
              "| rule | " + " | ".join(f"`{h.label}`" for h in histories)
              + " | holds on all full histories | mean stop epoch (full) |",
              "|---|" + "---|" * (len(histories) + 2)]
    for r in results:
        holds = {True: "yes", False: "no", None: "- (no full history)"}[r.holds_on_full]
        lines.append(f"| {r.rule.name} | " + " | ".join(cell(o) for o in r.outcomes)
                     + f" | {holds} | {_f(r.mean_stop, '.1f')} |")
    lines.append("")
    for metric in METRICS:
        if not n_full:
            lines.append(f"- Earliest rule that holds, by {metric}: none can be chosen "
                         "(no full history)")
            continue
        best = earliest_holding(results, metric)
        on = "the full history" if n_full == 1 else f"all {n_full} full histories"
        if best is None:
            lines.append(f"- Earliest rule that holds on {on}, by {metric}: none")
            continue
        gaps = [o.delta_max for h, o in zip(histories, best.outcomes) if h.full]
        lines.append(f"- Earliest rule that holds on {on}, by {metric}: "
                     f"**{best.rule.name}** (mean stop epoch {best.mean_stop:.1f}; its "
                     f"checkpoints' val acc is {sum(gaps) / len(gaps):+.4f} on average from "
                     "the histories' highest)")
    return "\n".join(lines) + "\n"


def build_markdown(histories: list[History], models: list[str] | None = None,
                   tolerance: float = TOLERANCE) -> str:
    by_model: dict[str, list[History]] = {}
    for h in histories:
        by_model.setdefault(h.model, []).append(h)
    if models:
        absent = [m for m in models if m not in by_model]
        if absent:
            raise UserError(f"no runs of {', '.join(absent)} in the files given (found: "
                            f"{', '.join(sorted(by_model)) or 'none'})")
    chosen = models or sorted(by_model, key=lambda m: (list(MODEL_LABELS).index(m)
                                                       if m in MODEL_LABELS else 99, m))
    parts = ["## Early stopping replayed over the saved histories", "",
             ("`python scripts/stopping_replay.py` (nothing trained; every number is read from "
             "the runs' histories). A rule holds on a full history (status finished) when the "
             f"checkpoint it keeps is within {tolerance} validation accuracy of the whole "
             "history's best checkpoint by the same metric."), ""]
    for model in chosen:
        parts.append(model_markdown(model, by_model[model], tolerance))
    return "\n".join(parts)


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="scripts/stopping_replay.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run JSON files or folders holding them")
    parser.add_argument("--model", action="append", default=None,
                        help="only this model (config 'model': lenet, model21, model22, "
                             "resnet18); repeat for several (default: every model found)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help="a rule holds when its checkpoint's val accuracy is within this "
                             f"of the whole history's best (default: {TOLERANCE})")
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help="also write the tables to this Markdown file")
    add_debug_arg(parser)
    return parser


def main(args: argparse.Namespace) -> str:
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise UserError(f"--tolerance {args.tolerance} must be a number >= 0", exit_code=2)
    text = build_markdown(collect(args.runs), args.model, args.tolerance)
    print(text, end="")
    if args.markdown:
        atomic_write_text(args.markdown, text)
        print(f"wrote {args.markdown}")
    return text


if __name__ == "__main__":
    run_cli(main, get_args_parser())
