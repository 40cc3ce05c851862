"""Every domain error has its own Chinese rendering: the test walks every ShopError
subclass in services/ (and every value of the enums that pick a rendering) and fails on
the generic fallback, so a new error cannot reach a user as "操作没有成功"."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import pkgutil
import re
import typing
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _all_subclasses(base: type) -> list[type]:
    found: list[type] = []
    for sub in base.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def _import_services() -> None:
    import services

    for module in pkgutil.walk_packages(services.__path__, "services."):
        importlib.import_module(module.name)


def _samples_for(annotation: Any) -> list[Any]:
    """Values to try for one field: every member of an enum, else one plausible value."""
    options = typing.get_args(annotation) or (annotation,)
    for option in options:
        if isinstance(option, type) and issubclass(option, enum.Enum):
            return list(option)
    for option in options:
        if option is int:
            return [3]
        if option is str:
            return ["refund"]
        if option is tuple or typing.get_origin(option) is tuple:
            return [("顺丰", "中通")]
    return [3]


def _instances(cls: type) -> list[Any]:
    if not dataclasses.is_dataclass(cls):
        return [cls()]
    hints = typing.get_type_hints(cls)
    instances = [{}]
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING and not isinstance(field.default, enum.Enum):
            continue
        values = _samples_for(hints[field.name])
        instances = [{**kwargs, field.name: value} for kwargs in instances for value in values]
    return [cls(**kwargs) for kwargs in instances]


def _error_cases() -> list[Any]:
    _import_services()
    from services.errors import InvalidValue, ShopError

    cases = []
    for cls in sorted(set(_all_subclasses(ShopError)), key=lambda c: c.__qualname__):
        if cls is InvalidValue:
            continue  # its field names are checked below
        for instance in _instances(cls):
            cases.append(pytest.param(instance, id=repr(instance)[:80]))
    return cases


@pytest.mark.parametrize("error", _error_cases())
def test_every_shop_error_has_its_own_rendering(error: Any) -> None:
    from plugins._common.errors import UNRENDERED, render_error

    text = render_error(error)
    assert text and text != UNRENDERED, f"{error!r} falls back to the generic text"


def test_the_walk_finds_the_errors_of_every_area() -> None:
    names = {param.values[0].__class__.__name__ for param in _error_cases()}
    assert {"OutOfStock", "TicketNotAllowed", "UnknownCarrier", "AlreadyReviewed"} <= names


def _invalid_value_fields() -> set[str]:
    """Every field an InvalidValue is raised for: the limits.FIELD_* names, and string
    literals passed directly in services/."""
    from services import limits

    fields = {value for name, value in vars(limits).items() if name.startswith("FIELD_")}
    pattern = re.compile(r'InvalidValue\(\s*"([a-z_]+)"')
    for path in (ROOT / "services").rglob("*.py"):
        fields.update(pattern.findall(path.read_text(encoding="utf-8")))
    return fields


def test_every_invalid_value_field_has_a_chinese_name() -> None:
    from plugins._common.errors import _FIELD_NAMES, render_error
    from services.errors import InvalidValue

    fields = _invalid_value_fields()
    assert len(fields) > 15
    missing = sorted(fields - set(_FIELD_NAMES))
    assert missing == [], f"InvalidValue fields without a Chinese name: {missing}"
    for field in fields:
        for reason in ("empty", "too_long", "too_small", "too_large", "format"):
            text = render_error(InvalidValue(field, reason, 5))
            assert field not in text, text
