"""PEP 562 lazy exports: a package names what it exports and which submodule defines each.

The top-level package and ``server`` both export names whose modules need optional or heavy
imports (Jupyter, websockets). Importing the package must stay cheap and work on a base
install, so each name is imported on first access and then cached in the package's globals.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, table: dict[str, str], namespace: dict[str, Any], exported: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` for ``package``.

    ``table`` maps a name to the relative submodule that defines it; ``namespace`` is the
    package's ``globals()``, where a resolved name is stored so the lookup runs once.
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(exported)

    return __getattr__, __dir__
