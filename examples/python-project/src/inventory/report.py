"""Plain-text stock reports."""


def low_stock(stock, threshold=5):
    """SKUs at or below `threshold`, sorted."""
    return sorted(sku for sku, count in stock.items() if count <= threshold)
