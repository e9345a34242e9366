"""Range checks for the ``__post_init__`` of config sections: each raises one ``ValueError``
naming the setting (``section.key``), the allowed range and the value given."""

from __future__ import annotations

import math


def require_at_least(section: object, name: str, minimum: int, *keys: str) -> None:
    """A schema section's range check (for its ``__post_init__``): ``ValueError`` naming
    ``name.key`` for the first of ``keys`` whose value is below ``minimum``."""
    for key in keys:
        if getattr(section, key) < minimum:
            raise ValueError(f"{name}.{key} must be >= {minimum}, got {getattr(section, key)}")


def require_in_range(section: object, name: str, low: float, high: float, *keys: str,
                     low_open: bool = False, high_open: bool = False) -> None:
    """A schema section's range check: ``ValueError`` naming ``name.key`` for the first of
    ``keys`` outside ``[low, high]`` (an open end excludes the bound; ``high=inf``: no upper
    bound, "must be > low")."""
    for key in keys:
        value = getattr(section, key)
        if (value < low or value > high or (low_open and value == low)
                or (high_open and value == high)):
            if high == math.inf:
                bounds = f"{'>' if low_open else '>='} {low:g}"
            else:
                bounds = (f"in {'(' if low_open else '['}{low:g}, {high:g}"
                          f"{')' if high_open else ']'}")
            raise ValueError(f"{name}.{key} must be {bounds}, got {value}")


def require_mean_std(section: object, name: str) -> None:
    """``name.mean`` and ``name.std``: three values each (RGB), every std above 0."""
    mean, std = list(section.mean), list(section.std)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"{name}.mean and {name}.std must be 3 values each, std > 0; got "
                         f"{mean} and {std}")


def require_interval(section: object, name: str, low: float, high: float, *keys: str,
                     low_open: bool = False) -> None:
    """A ``[lo, hi]`` pair setting: two values with ``low <= lo <= hi <= high`` (``low < lo``
    with ``low_open``), else ``ValueError`` naming ``name.key``."""
    for key in keys:
        value = list(getattr(section, key))
        if (len(value) != 2 or not low <= value[0] <= value[1] <= high
                or (low_open and value[0] == low)):
            below = "<" if low_open else "<="
            raise ValueError(f"{name}.{key} must be [lo, hi] with {low:g} {below} lo <= hi <= "
                             f"{high:g}, got {value}")
