"""The support bot's order-status skill, backed by a local SQLite file.

The database is ``$SHOP_DB`` when set, else ``shop.sqlite3`` next to this package's
project folder (``examples/support_bot/shop.sqlite3``). A missing file is created and
filled from ``seed.sql`` (a few made-up orders), so the example runs with no set-up.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from skills import skill

__all__ = ["shop_orders", "database_path", "connect"]


def database_path() -> Path:
    env = os.environ.get("SHOP_DB")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shop.sqlite3"


def connect(path: Path | None = None) -> sqlite3.Connection:
    """Open the shop database, creating and seeding it on first use."""
    path = path or database_path()
    fresh = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    if fresh:
        conn.executescript(resources.files(__package__).joinpath("seed.sql").read_text(encoding="utf-8"))
        conn.commit()
    return conn


@skill(command="order", intents=("order_status",))
def shop_orders(text: str) -> Iterator[str]:
    """Look up an order in the shop database by its number (e.g. /order 1001)."""
    numbers = re.findall(r"\b\d{3,}\b", text)
    if not numbers:
        yield "Which order? Give me the order number from your confirmation email, e.g. /order 1001."
        return
    with connect() as conn:
        for number in numbers:
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (int(number),)).fetchone()
            if row is None:
                yield f"I can't find order {number}; please check the number on your confirmation email.\n"
                continue
            items = ", ".join(r["name"] for r in conn.execute(
                "SELECT name FROM items WHERE order_id = ? ORDER BY name", (row["id"],)))
            line = f"Order {number} ({items}) is {row['status']}"
            if row["carrier"]:
                line += f" with {row['carrier']}, tracking {row['tracking']}"
            if row["expected"]:
                line += f"; expected delivery {row['expected']}"
            if row["note"]:
                line += f". {row['note']}"
            yield line + ".\n"
