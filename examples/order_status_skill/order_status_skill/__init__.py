"""An example third-party llmos skill: the status of an order, from a local JSON file.

The orders file is ``$ORDER_STATUS_FILE`` when set, else the sample shipped with the
package. The skill asks only for what it needs (the user's text) by parameter name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from skills import skill

__all__ = ["order_status", "load_orders"]


def load_orders() -> dict[str, Any]:
    path = os.environ.get("ORDER_STATUS_FILE")
    text = (Path(path).read_text(encoding="utf-8") if path
            else resources.files(__package__).joinpath("orders.json").read_text(encoding="utf-8"))
    return dict(json.loads(text))


@skill(command="order", intents=("order_status",))
def order_status(text: str) -> Iterator[str]:
    """Look up the status of an order by its number (e.g. /order 1001)."""
    numbers = re.findall(r"\b\d{3,}\b", text)
    if not numbers:
        yield "Which order? Give me the order number, e.g. /order 1001."
        return
    orders = load_orders()
    for number in numbers:
        order = orders.get(number)
        if order is None:
            yield f"I can't find order {number}; please check the number on your confirmation email.\n"
            continue
        details = ", ".join(f"{k}: {v}" for k, v in order.items() if k not in ("status", "items"))
        items = ", ".join(order.get("items", []))
        yield f"Order {number} ({items}) is {order['status']}" + (f" ({details})" if details else "") + ".\n"
