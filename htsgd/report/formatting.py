"""How numbers read in the report's tables and figure labels."""

import numpy as np
import pandas as pd


def format_number(value, spec: str) -> str:
    """`value` formatted by `spec`; '–' for a missing or non-finite one."""
    return "–" if value is None or not np.isfinite(value) else f"{value:{spec}}"


def median_range(values: np.ndarray, spec: str) -> str:
    """'0.620 (0.450–0.820, n=3)': median (min–max, number of values); '–' for none. Signed values
    read '-1.1 (-2.8 to +0.8, n=3)', where a dash between them would look like a minus."""
    if not len(values):
        return "–"
    if len(values) == 1:
        return f"{values[0]:{spec}} (n=1)"
    between = " to " if "+" in spec or np.min(values) < 0 else "–"
    return f"{np.median(values):{spec}} ({np.min(values):{spec}}{between}{np.max(values):{spec}}, n={len(values)})"


def mean_std(values: np.ndarray, spec: str) -> str:
    """'96.2 ± 1.1' (sample std), the mean alone for one value, '–' for none."""
    if not len(values):
        return "–"
    if len(values) == 1:
        return f"{values[0]:{spec}}"
    return f"{np.mean(values):{spec}} ± {np.std(values, ddof=1):{spec.lstrip('+')}}"


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub pipe table of `table`'s cells as they are (numeric-looking text is not reformatted: '96.0'
    stays), unpadded so that a long table stays small; a '|' in a cell is escaped so that it does not split it."""
    def row(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", " ") for cell in cells) + " |\n"

    return row(table.columns) + row(["---"] * len(table.columns)) + "".join(row(r) for r in table.itertuples(index=False))
