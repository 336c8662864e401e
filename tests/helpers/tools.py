"""Sample tools for the tool-calling tests (importable by path: ``tests.helpers.tools:order_status``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from skills.tools import tool

__all__ = ["order_status", "weather"]


@tool
def order_status(order_id: Annotated[int, Field(ge=1)], detail: Literal["short", "full"] = "short") -> dict:
    """The shipping status of an order.

    Args:
        order_id: the number on the order confirmation
        detail: how much to say
    """
    return {"order": order_id, "status": "shipped", "detail": detail}


@tool
def weather(city: str) -> str:
    """Today's weather in a city.

    Args:
        city: the city's name
    """
    return f"{city}: 18 C, light rain"
