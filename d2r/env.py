"""Typed environment helpers for settings.

Values come from the process environment, then from `.d2r/env` (written by the
embedded services manager so that every shell reaches the same services). A
`NAME_FILE` variable holding a path is honoured for secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent
_MISSING = object()


def _dotenv() -> dict[str, str]:
    path = Path(os.environ.get("D2R_ENV_FILE", ROOT / ".d2r" / "env"))
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


_FILE_VALUES = _dotenv()


def env_str(name: str, default: object = _MISSING) -> str:
    """The variable's value; without a default a missing value is ImproperlyConfigured."""
    value = os.environ.get(name, _FILE_VALUES.get(name))
    if value is None or value == "":
        if default is _MISSING:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return str(default) if default is not None else ""
    return value


def env_secret(name: str, default: object = _MISSING) -> str:
    """Like env_str, but `NAME_FILE` (a path, e.g. a mounted secret) wins."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return env_str(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name, "1" if default else "0").lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = env_str(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]
