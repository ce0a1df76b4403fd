"""Stock counts by SKU."""

from __future__ import annotations


def take(stock: dict[str, int], sku: str, quantity: int) -> dict[str, int]:
    """A copy of `stock` with `quantity` of `sku` taken out; never below zero."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    available = stock.get(sku, 0)
    if quantity > available:
        raise ValueError(f"only {available} of {sku} in stock")
    return {**stock, sku: available - quantity}
