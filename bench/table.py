"""One row of the benchmark table, and the table itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    """A figure, optionally beside a reference measured in the same run, and the goal it serves."""

    bench: str
    metric: str
    value: float | str
    unit: str = ""
    reference: float | str | None = None
    reference_name: str = ""
    target: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> str:
        numbers = isinstance(self.value, int | float) and isinstance(self.reference, int | float)
        if numbers and self.value:
            return f"{self.reference / self.value:.2f}x"
        return ""


def _fmt(v: float | str | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(rows: list[Row]) -> str:
    head = ["bench", "metric", "value", "unit", "reference", "ref/value", "target", "ok"]
    body = [
        [
            r.bench,
            r.metric,
            _fmt(r.value),
            r.unit,
            (f"{_fmt(r.reference)} ({r.reference_name})" if r.reference is not None else ""),
            r.ratio,
            r.target,
            {True: "yes", False: "NO", None: ""}[r.ok],
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)
