"""A bench directory's `results.md` and `plots/`, drawn from its records."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._aggregate import iqm, mean, normalised, stratified_bootstrap
from ._published import BUDGET, CITATION, published_mmer, SOURCE


LEVELS = ("Easy", "Medium", "Hard")


def _order(records: list[dict]):
    """Torsos in order of appearance; tasks in the registry's order."""
    from ._popgym import _popgym_tasks

    torsos = list(dict.fromkeys(r["torso"] for r in records))
    known = _popgym_tasks()
    present = {r["task"] for r in records}
    tasks = [t for t in known if t in present] + sorted(present - set(known))
    return torsos, tasks


def _cells(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        cells.setdefault((r["torso"], r["task"]), []).append(r)
    return cells


def _values(cell: list[dict], key: str) -> np.ndarray | None:
    """The seeds' `key` in a finished cell; None for a failed cell."""
    if any(r["status"] != "ok" for r in cell):
        return None
    return np.array([np.nan if r[key] is None else r[key] for r in cell], float)


def _mean_sd(x: np.ndarray) -> str:
    x = x[np.isfinite(x)]
    if not x.size:
        return "n/a"
    sd = np.std(x, ddof=1) if x.size > 1 else 0.0
    return f"{np.mean(x):.3f} ± {sd:.3f}"


def _level_of(task: str) -> str:
    return next((lv for lv in LEVELS if task.endswith(lv)), "Other")


def _table(torsos, tasks, cells, key: str, published: bool) -> list[str]:
    head = ["task", *torsos]
    if published:
        head += ["published PPO-GRU", "GRU − published"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for task in tasks:
        row = [task]
        for torso in torsos:
            cell = cells.get((torso, task))
            if cell is None:
                row.append("")
                continue
            values = _values(cell, key)
            row.append("failed" if values is None else _mean_sd(values))
        if published:
            figure = published_mmer(task)
            if figure is None:
                row += ["—", ""]
            else:
                sd = "" if figure.sd is None else f" ± {figure.sd:.3f}"
                row.append(f"{figure.mean:.3f}{sd}")
                ours = cells.get(("gru", task))
                values = None if ours is None else _values(ours, key)
                if values is None or not np.isfinite(values).any():
                    row.append("")
                else:
                    # Rounded first, so that 1 - 4e-7 shows as +0.000, not -0.000.
                    diff = round(float(np.nanmean(values)) - figure.mean, 3) + 0.0
                    row.append(f"{diff:+.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _markdown(out: Path, records: list[dict]) -> str:
    from ._popgym import SETTINGS

    torsos, tasks = _order(records)
    cells = _cells(records)
    settings = {}
    if (out / SETTINGS).exists():
        settings = json.loads((out / SETTINGS).read_text())
    versions = settings.get(
        "versions", records[0].get("versions", {}) if records else {}
    )
    lines = ["# POPGym benchmark", ""]
    lines.append(
        f"PPO, {settings.get('seeds', '?')} seeds per torso and task, "
        f"{settings.get('total_steps', 0):,} environment steps per seed, networks "
        f"{settings.get('features', '?')} wide; the final evaluation is greedy over "
        f"{settings.get('eval_episodes', '?')} episodes per seed. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + "."
    )
    lines.append("")
    lines.append(
        "**MMER** (POPGym's score): the maximum over training of the mean return "
        "of the episodes that ended in each update's rollout; mean ± sd (sample "
        "standard deviation) over seeds. **Published PPO-GRU**: "
        f"{CITATION} Their budget: {BUDGET['total_steps']:,} steps, "
        f"{BUDGET['trials']} trials, RLlib PPO (train batch "
        f"{BUDGET['train_batch']:,}, minibatch {BUDGET['sgd_minibatch']:,}, "
        f"sequences of {BUDGET['max_sequence_length']}, learning rate "
        f"{BUDGET['learning_rate']}, λ {BUDGET['gae_lambda']}, "
        f"{BUDGET['num_sgd_passes']} SGD passes, memory "
        f"{BUDGET['memory_size']}). {SOURCE} A dash: no published figure is known."
    )
    lines.append("")
    for field, title in (("config", "PPO configuration"), ("optimizer", "Optimiser")):
        if field in settings:
            body = ", ".join(f"{k} {v}" for k, v in settings[field].items())
            lines += [f"{title}: {body}.", ""]
    failed = sorted(
        {
            (r["torso"], r["task"], r.get("error"))
            for r in records
            if r["status"] != "ok"
        }
    )
    for level in (*LEVELS, "Other"):
        level_tasks = [t for t in tasks if _level_of(t) == level]
        if not level_tasks:
            continue
        lines += [f"## {level}", "", "MMER:", ""]
        lines += _table(torsos, level_tasks, cells, "mmer", published=True)
        lines += ["", "Final greedy evaluation return:", ""]
        lines += _table(torsos, level_tasks, cells, "eval_return", published=False)
        lines += ["", f"![MMER per task, {level}](plots/mmer_{level.lower()}.png)", ""]
    if failed:
        lines += ["## Failed cells", ""]
        lines += [f"- {torso} on {task}: {error}" for torso, task, error in failed]
        lines.append("")
    lines += ["## Plots", ""]
    if (out / "plots" / "aggregate.png").exists():
        lines += ["![Aggregate normalised MMER](plots/aggregate.png)", ""]
    lines += [f"- [{t}](plots/curves/{t}.png)" for t in tasks]
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- plots
def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
_COLORS += ["tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]


def _plot_mmer(path: Path, torsos, tasks, cells) -> None:
    fig = _figure(max(6.0, 0.9 * len(tasks) + 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(len(torsos), 1)
    for i, torso in enumerate(torsos):
        color = _COLORS[i % len(_COLORS)]
        for j, task in enumerate(tasks):
            cell = cells.get((torso, task))
            values = None if cell is None else _values(cell, "mmer")
            if values is None:
                continue
            x = j - 0.4 + width * (i + 0.5)
            ax.scatter(np.full(values.shape, x), values, s=10, color=color, alpha=0.6)
            if np.isfinite(values).any():
                ax.hlines(np.nanmean(values), x - width / 2, x + width / 2, color=color)
        ax.plot([], [], color=color, label=torso)
    for j, task in enumerate(tasks):
        figure = published_mmer(task)
        if figure is not None:
            ax.hlines(figure.mean, j - 0.45, j + 0.45, color="black", ls=":", lw=1.2)
    ax.plot([], [], color="black", ls=":", label="published PPO-GRU (15M steps)")
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("MMER (dots: seeds, line: mean)")
    ax.set_ylim(-1.05, 1.05)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)


def _plot_curves(path: Path, task: str, torsos, cells) -> None:
    fig = _figure(6.0, 3.5)
    ax = fig.add_subplot()
    for i, torso in enumerate(torsos):
        cell = cells.get((torso, task))
        if not cell or not cell[0]["steps"]:
            continue
        color = _COLORS[i % len(_COLORS)]
        steps = np.asarray(cell[0]["steps"], float)
        curves = np.array(
            [[np.nan if v is None else v for v in r["returns"]] for r in cell], float
        )
        with np.errstate(all="ignore"), _quiet():
            middle = np.nanmean(curves, axis=0)
            low, high = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
        status = "" if cell[0]["status"] == "ok" else " (failed)"
        ax.plot(steps, middle, color=color, label=f"{torso}{status}, {len(cell)} seeds")
        ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
    figure = published_mmer(task)
    if figure is not None:
        ax.axhline(figure.mean, color="black", ls=":", lw=1, label="published PPO-GRU")
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("mean episodic return per update")
    ax.set_title(f"{task}: mean over seeds, band from worst to best", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)


class _quiet:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def aggregate_scores(records: list[dict]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The normalised MMER (`(x + 1) / 2`) of every torso, shape `(seeds,
    tasks)`, over the tasks every torso finished with a score for every seed."""
    torsos, tasks = _order(records)
    cells = _cells(records)
    complete = []
    for task in tasks:
        values = [
            _values(cells[(t, task)], "mmer") if (t, task) in cells else None
            for t in torsos
        ]
        if all(v is not None and np.isfinite(v).all() for v in values):
            if len({v.size for v in values}) == 1:
                complete.append(task)
    if not complete:
        return {}, []
    scores = {
        torso: np.stack(
            [normalised(_values(cells[(torso, t)], "mmer")) for t in complete], axis=1
        )
        for torso in torsos
    }
    return scores, complete


def _plot_aggregate(path: Path, scores: dict[str, np.ndarray], tasks) -> list[str]:
    fig = _figure(7.0, 0.5 * len(scores) + 1.6)
    lines = []
    for k, (name, statistic) in enumerate((("IQM", iqm), ("mean", mean))):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, (torso, x) in enumerate(scores.items()):
            point, low, high = stratified_bootstrap(x, statistic)
            color = _COLORS[i % len(_COLORS)]
            ax.barh(i, high - low, left=low, height=0.6, color=color, alpha=0.4)
            ax.vlines(point, i - 0.3, i + 0.3, color=color, lw=2)
            lines.append(f"{torso}: {name} {point:.3f} [{low:.3f}, {high:.3f}]")
        ax.set_yticks(range(len(scores)))
        ax.set_yticklabels(list(scores) if k == 0 else [])
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel(f"{name} of normalised MMER")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{len(tasks)} tasks; 95% stratified bootstrap intervals", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return lines


def write_report(
    out: str | Path, records: list[dict], *, log: Callable[[str], None] = print
) -> None:
    """Write `out/results.md` and `out/plots/` from the bench's records."""
    out = Path(out)
    plots = out / "plots"
    (plots / "curves").mkdir(parents=True, exist_ok=True)
    if records:
        torsos, tasks = _order(records)
        cells = _cells(records)
        for level in (*LEVELS, "Other"):
            level_tasks = [t for t in tasks if _level_of(t) == level]
            if level_tasks:
                _plot_mmer(
                    plots / f"mmer_{level.lower()}.png", torsos, level_tasks, cells
                )
        for task in tasks:
            _plot_curves(plots / "curves" / f"{task}.png", task, torsos, cells)
        scores, complete = aggregate_scores(records)
        if complete:
            for line in _plot_aggregate(plots / "aggregate.png", scores, complete):
                log(f"aggregate over {len(complete)} tasks, {line}")
        else:
            (plots / "aggregate.png").unlink(missing_ok=True)
    (out / "results.md").write_text(_markdown(out, records))
    log(f"wrote {out / 'results.md'} and {plots}")
