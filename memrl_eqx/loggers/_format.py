"""How the terminal loggers write a number."""

import math


def format_value(value: float) -> str:
    """A metric in at most a few characters: 3 significant digits (`0.532`,
    `10.0`, `1.25e-05`), whole thousands with separators (`12,288`), and `-` for
    NaN, which means "nothing to report" (e.g. no episode ended)."""
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if 1e3 <= abs(value) < 1e9:
        return f"{value:,.0f}"
    text = f"{value:#.3g}"
    return text[:-1] if text.endswith(".") else text
