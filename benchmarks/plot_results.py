"""Draw the figures of `docs/performance.md` from `benchmarks/RESULTS.md`.

The numbers are parsed from the markdown tables of RESULTS.md, never typed in
here, so a plot cannot drift from the recorded figures: re-run this script after
a benchmark updates a table. Each table is found by the heading it sits under and
its header row; if a table is missing or ambiguous the script stops and says
which.

    python benchmarks/plot_results.py [--results benchmarks/RESULTS.md]
                                      [--out docs/assets/performance]
"""

import argparse
import dataclasses
import functools
import pathlib
import re

import jax
import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch


ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE = (7, 4)  # inches, at DPI: 700 x 400 pixels
DPI = 100
OURS, ORIGINAL = "#1f77b4", "#ff7f0e"  # memrl_eqx, the Flax original

FAMILY_COLOURS = {
    "step cell (RNN)": "#d62728",
    "Memoroid": "#1f77b4",
    "attention": "#9467bd",
    "feed-forward": "#7f7f7f",
    "composite": "#2ca02c",  # stacks and wrappers of the above (xLSTM, MoE, RTRL)
}


@functools.cache
def family(model: str) -> str:
    """How the torso `model` (a name of `memrl_eqx.TORSOS`) runs, read off the
    module its factory builds (at width 4: a few milliseconds)."""
    import memrl_eqx

    if model not in memrl_eqx.TORSOS:
        raise SystemExit(f"plot_results: {model!r} is not a name of memrl_eqx.TORSOS")
    torso = memrl_eqx.TORSOS[model](4, 4, jax.random.key(0))
    if isinstance(torso, memrl_eqx.nn.Memoroid):
        return "Memoroid"
    if isinstance(torso, memrl_eqx.nn.RNN):
        return "step cell (RNN)"
    if isinstance(torso, memrl_eqx.nn.SequenceModelWrapper):
        return "feed-forward"
    is_attention = lambda x: isinstance(x, memrl_eqx.nn.SelfAttention)
    if any(map(is_attention, jax.tree.leaves(torso, is_leaf=is_attention))):
        return "attention"
    return "composite"


# ----------------------------------------------------------------- parsing


@dataclasses.dataclass
class Table:
    headings: tuple[str, ...]  # the enclosing headings, outermost first
    header: list[str]
    rows: list[list[str]]
    before: str  # the paragraph just above the table

    def column(self, name: str) -> list[str]:
        return [row[self.header.index(name)] for row in self.rows]

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.header, row)) for row in self.rows]


def _cells(line: str) -> list[str]:
    # "| a | b |  trailing note" -> ["a", "b"]: text after the last pipe is a
    # note, not a cell.
    return [c.strip() for c in line.strip().split("|")[1:-1]]


def read_tables(text: str) -> list[Table]:
    """Every pipe table of a markdown document, with the headings above it."""
    tables, headings, paragraph = [], [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading:
            level = len(heading.group(1))
            headings = headings[: level - 1] + [""] * (level - 1 - len(headings))
            headings.append(heading.group(2).strip())
            paragraph = []
        elif (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|(\s*:?-+:?\s*\|)+", lines[i + 1])
        ):
            header = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            tables.append(
                Table(
                    tuple(h for h in headings if h), header, rows, " ".join(paragraph)
                )
            )
            paragraph = []
            continue
        elif line.strip():
            # A line after a blank one starts a new paragraph; a table keeps the
            # last paragraph above it, across the blank line between them.
            if i > 0 and not lines[i - 1].strip():
                paragraph = []
            paragraph.append(line.strip())
        i += 1
    return tables


def find(tables: list[Table], heading: str, *columns: str, before: str = "") -> Table:
    """The one table under a heading starting with `heading` whose header begins
    with `columns` (and whose preceding paragraph contains `before`)."""
    found = [
        t
        for t in tables
        if any(h.startswith(heading) for h in t.headings)
        and t.header[: len(columns)] == list(columns)
        and before in t.before
    ]
    if len(found) != 1:
        raise SystemExit(
            f"plot_results: expected one table under {heading!r} with columns "
            f"{columns} in RESULTS.md; found {len(found)}. Update this script with "
            "the table."
        )
    return found[0]


_SUFFIX = {"k": 1e3, "M": 1e6, "G": 1e9}


def number(cell: str) -> float | None:
    """The leading number of a cell: "19,438" 19438, "1.14×" 1.14, "17%" 17,
    "5.09M" 5.09e6, "7.9k" 7900. None for a failure or a dash."""
    match = re.match(r"^\s*([-+]?[\d,]*\.?\d+)\s*([kMG]?)", cell)
    if not match:
        return None
    return float(match.group(1).replace(",", "")) * _SUFFIX.get(match.group(2), 1.0)


def pair(cell: str) -> tuple[float | None, float | None]:
    """ "651 / 670" -> (651, 670); a failed side is None."""
    left, _, right = cell.partition(" / ")
    return number(left), number(right)


def peak_of(text: str) -> str:
    match = re.search(r"peak ([\d.]+) GFLOP/s", text)
    return f"{match.group(1)} GFLOP/s" if match else "?"


# ---------------------------------------------------------------- plotting


def _figure(*, ncols: int = 1, **kwargs):
    fig, axes = plt.subplots(1, ncols, figsize=SIZE, dpi=DPI, **kwargs)
    return fig, axes


def _save(fig, out: pathlib.Path, name: str, made: list[str]) -> None:
    fig.tight_layout()
    path = out / name
    fig.savefig(path)
    plt.close(fig)
    made.append(str(path))


def _family_legend(models) -> list[Patch]:
    """One patch per family among `models`."""
    present = {family(m) for m in models}
    return [Patch(color=c, label=f) for f, c in FAMILY_COLOURS.items() if f in present]


def _grouped(ax, labels, ours, original, *, log=False, failed_at=None, legend="best"):
    """Bars of ours and the original's per label; a failed bar (None) is drawn
    hatched at `failed_at` (or not at all) with "OOM" on it."""
    x = range(len(labels))
    width = 0.4
    for offset, values, colour, name in (
        (-width / 2, ours, OURS, "memrl_eqx"),
        (width / 2, original, ORIGINAL, "Flax original"),
    ):
        for xi, v in zip(x, values):
            if v is None:
                if failed_at is not None:
                    ax.bar(
                        xi + offset,
                        failed_at,
                        width,
                        color="white",
                        edgecolor=colour,
                        hatch="//",
                    )
                    ax.text(
                        xi + offset,
                        failed_at,
                        "OOM",
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        rotation=90,
                    )
            else:
                ax.bar(xi + offset, v, width, color=colour)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.legend(
        handles=[
            Patch(color=OURS, label="memrl_eqx"),
            Patch(color=ORIGINAL, label="Flax original"),
        ],
        fontsize=8,
        loc=legend,
        ncol=2,
    )
    if log:
        ax.set_yscale("log")
    else:  # room for the legend and the ratios above the bars
        ax.set_ylim(top=1.3 * max(v for v in ours + original if v is not None))
    ax.grid(axis="y", alpha=0.3, which="both")


def plot_ppo_side_by_side(tables, out, made):
    t = find(tables, "Side by side", "torso", "ours steps/s")
    rows = t.records()
    torsos = [r["torso"] for r in rows]
    fig, (left, right) = _figure(ncols=2)
    _grouped(
        left,
        torsos,
        [number(r["ours steps/s"]) for r in rows],
        [number(r["original steps/s"]) for r in rows],
        legend="upper left",
    )
    for i, r in enumerate(rows):
        top = max(number(r["ours steps/s"]), number(r["original steps/s"]))
        left.text(i, top * 1.02, r["ratio"], ha="center", va="bottom", fontsize=8)
    left.set_ylabel("environment steps/s")
    left.set_title("PPO steady state", fontsize=10)
    _grouped(
        right,
        torsos,
        [number(r["ours compile (s)"]) for r in rows],
        [number(r["original compile (s)"]) for r in rows],
        legend="upper left",
    )
    right.set_ylabel("compile time (s)")
    right.set_title("PPO compile", fontsize=10)
    fig.suptitle("PPO on CartPole-v1, 32 envs x 128 steps, same run", fontsize=10)
    _save(fig, out, "ppo_side_by_side.png", made)


def plot_sequence_models_side_by_side(tables, out, made):
    t = find(tables, "Side by side", "model", "T", "sizes")
    rows = t.records()
    models = [r["model"] for r in rows]
    fig, ax = _figure()
    ours = [number(r["ours tokens/s"]) for r in rows]
    original = [number(r["original tokens/s"]) for r in rows]
    _grouped(
        ax,
        models,
        ours,
        original,
        log=True,
        failed_at=max(ours) * 0.6,
        legend="upper right",
    )
    for i, r in enumerate(rows):
        if number(r["ratio"]) is not None:
            top = max(ours[i], original[i])
            ax.text(i, top * 1.15, r["ratio"], ha="center", va="bottom", fontsize=7)
    ax.set_ylim(top=max(ours + [o or 0 for o in original]) * 3)
    ax.set_ylabel("forward+backward tokens/s")
    ax.set_title("Sequence models at T = 1024, batch 32, features 64", fontsize=10)
    _save(fig, out, "sequence_models_side_by_side.png", made)


def plot_compile_side_by_side(tables, out, made):
    t = find(tables, "Side by side", "model", "T", "sizes")
    rows = t.records()
    fig, ax = _figure()
    _grouped(
        ax,
        [r["model"] for r in rows],
        [number(r["ours compile (s)"]) for r in rows],
        [number(r["original compile (s)"]) for r in rows],
        failed_at=1.0,
    )
    ax.set_ylabel("compile time of fwd+bwd (s)")
    ax.set_title("Compile time at T = 1024 (lower is better)", fontsize=10)
    _save(fig, out, "compile_side_by_side.png", made)


def plot_memory(tables, out, made):
    t = find(tables, "Side by side", "model", "ours peak RSS (MiB)")
    rows = t.records()
    limit = 12 * 1024  # the run's limit, 12 GiB
    fig, ax = _figure()
    _grouped(
        ax,
        [r["model"] for r in rows],
        [number(r["ours peak RSS (MiB)"]) for r in rows],
        [number(r["original peak RSS (MiB)"]) for r in rows],
        log=True,
        failed_at=limit,
        legend="upper left",
    )
    ax.axhline(limit, color="black", lw=0.8, ls=":")
    ax.text(-0.4, limit * 1.08, "12 GiB limit", fontsize=7)
    ax.set_ylim(top=limit * 4)
    ax.set_ylabel("peak resident memory (MiB)")
    ax.set_title(
        "One fwd+bwd pass at T = 4096, batch 32 (lower is better)", fontsize=10
    )
    _save(fig, out, "memory_t4096.png", made)


def plot_tokens_vs_length(tables, out, made):
    t = find(tables, "Memoroids against T", "model", "T", before="16384")
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in t.records():
        curves.setdefault(r["model"], []).append(
            (number(r["T"]), number(r["fwd+bwd tokens/s"]))
        )
    fig, ax = _figure()
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for model, points in curves.items():
        lengths, rates = zip(*sorted(points))
        style = "-" if family(model) == "Memoroid" else "--"
        ax.plot(lengths, rates, style, marker="o", ms=3, label=model)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("forward+backward tokens/s")
    ax.set_title(
        "Memoroids (solid) and step RNNs (dashed), batch 32, features 64",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(fig, out, "tokens_vs_length.png", made)


def _t1024(tables) -> list[dict[str, str]]:
    """Every model at T = 1024 from the roofline run: the Memoroid table's
    T = 1024 rows and the other models' table."""
    memoroids = find(tables, "Memoroids against T", "model", "T", before="16384")
    others = find(
        tables, "Memoroids against T", "model", "T", before="The other models"
    )
    rows = [r for r in memoroids.records() if r["T"] == "1024"]
    for r in rows:
        r["peak"] = peak_of(memoroids.before)
    for r in others.records():
        r["peak"] = peak_of(others.before)
        rows.append(r)
    return rows


def plot_sequence_models_t1024(tables, out, made):
    rows = sorted(_t1024(tables), key=lambda r: number(r["fwd+bwd tokens/s"]))
    fig, ax = _figure()
    y = range(len(rows))
    ax.barh(
        list(y),
        [number(r["fwd+bwd tokens/s"]) for r in rows],
        color=[FAMILY_COLOURS[family(r["model"])] for r in rows],
    )
    ax.set_yticks(list(y))
    ax.set_yticklabels([r["model"] for r in rows], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("forward+backward tokens/s (T = 1024, batch 32, features 64)")
    ax.legend(
        handles=_family_legend(r["model"] for r in rows), fontsize=7, loc="lower right"
    )
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_title("Every sequence model, one script, 2026-11-23", fontsize=10)
    _save(fig, out, "sequence_models_t1024.png", made)


# Label placement only (points that would overlap their neighbours' labels).
_LABEL_OFFSETS = {
    "min_gru": (-3, 3, "right"),
    "rtu": (3, -9, "left"),
    "dnc": (-3, 3, "right"),
    "shm": (3, -9, "left"),
}


def plot_roofline(tables, out, made):
    rows = _t1024(tables)
    fig, ax = _figure()
    for r in rows:
        x, y = number(r["fwd+bwd kFLOP/token"]), number(r["of peak"])
        colour = FAMILY_COLOURS[family(r["model"])]
        ax.scatter([x], [y], color=colour, s=18, zorder=3)
        ax.annotate(
            r["model"],
            (x, y),
            fontsize=7,
            xytext=_LABEL_OFFSETS.get(r["model"], (3, 3, "left"))[:2],
            ha=_LABEL_OFFSETS.get(r["model"], (3, 3, "left"))[2],
            textcoords="offset points",
        )
    ax.axhline(25, color="black", lw=0.8, ls=":")
    ax.text(
        0.01,
        25.5,
        "target: 25% of peak",
        fontsize=7,
        transform=ax.get_yaxis_transform(),
    )
    ax.set_xscale("log")
    ax.set_ylim(0, 30)
    ax.set_xlabel("forward+backward work per token (kFLOP)")
    ax.set_ylabel("achieved FLOP/s, % of matmul peak")
    peaks = sorted({r["peak"] for r in rows})
    ax.set_title(
        f"Share of the float32 matmul peak at T = 1024 (peak {' and '.join(peaks)})",
        fontsize=9,
    )
    ax.legend(
        handles=_family_legend(r["model"] for r in rows), fontsize=7, loc="upper center"
    )
    ax.grid(alpha=0.3, which="both")
    _save(fig, out, "roofline.png", made)


def plot_ppo_parts(tables, out, made):
    t = find(tables, "Side by side", "torso", "env steps/s", "compile (s)")
    rows = t.records()
    torsos = [r["torso"] for r in rows]
    fig, (left, right) = _figure(ncols=2)
    left.bar(torsos, [number(r["env steps/s"]) for r in rows], color=OURS)
    left.set_ylabel("environment steps/s")
    left.set_title("PPO steps/s (10 updates)", fontsize=10)
    left.grid(axis="y", alpha=0.3)
    rollout = [number(r["rollout share"]) for r in rows]
    right.barh(torsos, rollout, color="#2ca02c", label="rollout (acting)")
    right.barh(
        torsos,
        [100 - s for s in rollout],
        left=rollout,
        color="#8c564b",
        label="learner (epochs x minibatches)",
    )
    for i, share in enumerate(rollout):
        right.text(share + 1, i, f"{share:.0f}%", va="center", fontsize=8, color="w")
    right.set_xlim(0, 100)
    right.set_xlabel("% of an update's time")
    right.set_title("Where an update's time goes", fontsize=10)
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.suptitle("PPO, CartPole-v1, 32 envs x 128 steps", fontsize=10)
    _save(fig, out, "ppo_parts.png", made)


def plot_algorithms(tables, out, made):
    t = find(tables, "Algorithms", "algorithm", "env steps/s")
    rows = t.records()
    fig, ax = _figure()
    names = [r["algorithm"] for r in rows]
    rates = [number(r["env steps/s"]) for r in rows]
    ax.bar(names, rates, color=OURS)
    for i, r in enumerate(rows):
        ax.text(
            i,
            rates[i] * 1.1,
            f"{r['env steps per update']} steps/update",
            ha="center",
            fontsize=7,
        )
    ax.set_yscale("log")
    ax.set_ylim(top=max(rates) * 4)
    ax.set_ylabel("environment steps/s")
    ax.set_title(
        "Each algorithm's defaults, GRU 64 (CartPole; SAC: Pendulum)", fontsize=10
    )
    ax.grid(axis="y", alpha=0.3, which="both")
    _save(fig, out, "algorithms.png", made)


def plot_scaling(tables, out, made):
    t = find(tables, "Sharding over devices", "devices", "env steps/s")
    rows = t.records()
    fig, ax = _figure()
    ax.bar(
        [r["devices"] for r in rows],
        [number(r["env steps/s"]) for r in rows],
        color=OURS,
    )
    ax.set_xlabel("forced host devices (all on the same 2 cores)")
    ax.set_ylabel("environment steps/s")
    ax.set_title(
        "PPO GRU sharded over host devices: the cost of partitioning", fontsize=10
    )
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out, "scaling.png", made)


def plot_popgym(tables, out, made):
    t = find(tables, "POPGym memory suite", "task", "steps/s")
    rows = t.records()
    fig, ax = _figure()
    millions = [number(r["steps/s"]) / 1e6 for r in rows]
    ax.barh([r["task"] for r in rows], millions, color=OURS)
    ax.invert_yaxis()
    ax.set_xlabel("random-policy environment steps/s, millions (4096 envs)")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("The POPGym memory suite, Easy", fontsize=10)
    _save(fig, out, "popgym.png", made)


PLOTS = [
    plot_ppo_side_by_side,
    plot_sequence_models_side_by_side,
    plot_compile_side_by_side,
    plot_memory,
    plot_tokens_vs_length,
    plot_sequence_models_t1024,
    plot_roofline,
    plot_ppo_parts,
    plot_algorithms,
    plot_scaling,
    plot_popgym,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=pathlib.Path, default=ROOT / "benchmarks" / "RESULTS.md"
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=ROOT / "docs" / "assets" / "performance"
    )
    args = parser.parse_args()
    tables = read_tables(args.results.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    for plot in PLOTS:
        plot(tables, args.out, made)
    for path in made:
        print(path)


if __name__ == "__main__":
    main()
