"""For the skills tests: the example plugin's folder, installed-distribution records that make
a plugin discoverable without pip, and a small Markdown guide for the knowledge base."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "order_status_skill"


def write_dist_info(folder: Path, name: str, entry_points: dict[str, str]) -> None:
    """A minimal installed-distribution record: what importlib.metadata scans sys.path for."""
    info = folder / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n", encoding="utf-8")
    lines = ["[llmos.skills]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


GUIDE = """# Returns guide

Customers may return any item within 30 days of delivery for a full refund.
Refunds are paid to the original payment method within 5 business days.

## Shipping

Standard shipping takes 3 to 5 business days. Express shipping costs 12 euros and arrives the next day.
The warehouse is located in Rotterdam.
"""
