"""The support bot's order lookups, backed by a local SQLite file: the ``order_lookup`` tool
(the model calls it when a customer asks about an order; its sentence is the reply, so a small
model only has to get the order number right), the ``order_status`` tool (the order as data,
for a model that phrases its own answer) and the ``/order`` skill.

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
from skills.tools import tool

__all__ = ["order_status", "order_lookup", "shop_orders", "database_path", "connect"]


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


def _order(conn: sqlite3.Connection, number: int) -> dict[str, object] | None:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (number,)).fetchone()
    if row is None:
        return None
    items = [r["name"] for r in conn.execute("SELECT name FROM items WHERE order_id = ? ORDER BY name", (number,))]
    found: dict[str, object] = {"order": number, "items": items, "status": row["status"]}
    for key in ("carrier", "tracking", "expected", "note"):
        if row[key]:
            found[key] = row[key]
    return found


@tool
def order_status(order_id: int) -> dict[str, object]:
    """The status of a customer's order: its items, shipping status, carrier, tracking number
    and expected delivery.

    Args:
        order_id: the order number from the customer's confirmation email, e.g. 1234
    """
    with connect() as conn:
        found = _order(conn, order_id)
    if found is None:
        raise ValueError(f"there is no order {order_id}; ask the customer to check the number on the confirmation email")
    return found


def _describe(number: int, found: dict[str, object] | None) -> str:
    """One order as the customer reads it."""
    if found is None:
        return f"I can't find order {number}; please check the number on your confirmation email."
    items = found["items"]
    assert isinstance(items, list)
    line = f"Order {number} ({', '.join(items)}) is {found['status']}"
    if "carrier" in found:
        line += f" with {found['carrier']}, tracking {found.get('tracking')}"
    if "expected" in found:
        line += f"; expected delivery {found['expected']}"
    if "note" in found:
        line += f". {found['note']}"
    return line + "."


@tool(return_direct=True)
def order_lookup(order_id: int) -> str:
    """Look up a customer's order: its items, shipping status, carrier, tracking number and
    expected delivery.

    Args:
        order_id: the order number the customer gives, e.g. 1234
    """
    with connect() as conn:
        return _describe(order_id, _order(conn, order_id))


@skill(command="order", intents=("order_status",))
def shop_orders(text: str) -> Iterator[str]:
    """Look up an order in the shop database by its number (e.g. /order 1001)."""
    numbers = re.findall(r"\b\d{3,}\b", text)
    if not numbers:
        yield "Which order? Give me the order number from your confirmation email, e.g. /order 1001."
        return
    with connect() as conn:
        for number in numbers:
            yield _describe(int(number), _order(conn, int(number))) + "\n"
