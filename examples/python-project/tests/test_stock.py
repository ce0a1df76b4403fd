import pytest
from inventory.stock import take


def test_take_reduces_the_count():
    assert take({"apple": 3}, "apple", 2) == {"apple": 1}


def test_take_refuses_more_than_available():
    with pytest.raises(ValueError):
        take({"apple": 1}, "apple", 2)
