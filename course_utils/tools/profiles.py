"""The runner's profiles: profiles/<name>.yaml read, checked and merged along their `extends` chain."""

from __future__ import annotations

from pathlib import Path

import yaml

from course_utils.datasets.sources import PROJECT_ROOT

PROFILES_DIR = PROJECT_ROOT / "profiles"
PROFILE_KEYS = {"description", "extends", "parameters", "notebooks", "threads", "jobs"}


class ProfileError(ValueError):
    """A profile that cannot be used: missing, unreadable, not YAML, or not shaped as a profile; names its file."""


def merge(base: dict, override: dict) -> dict:
    """`base` updated by `override`; nested dicts merged key by key (a notebook block keeps what it does not set)."""
    merged = dict(base)
    for key, value in override.items():
        both_dicts = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if both_dicts else value
    return merged


def load_profile(name: str, folder: Path | None = None, _chain: tuple[str, ...] = ()) -> dict:
    """Read <folder>/<name>.yaml: `parameters` for every notebook, `notebooks` per stem, `threads`, `jobs`.

    `extends: <parent>` starts from the parent profile (itself resolved the same way) and merges this one over it.
    """
    folder = PROFILES_DIR if folder is None else folder
    if name in _chain:
        raise ProfileError(f"profiles extend each other in a cycle: {' -> '.join((*_chain, name))}")
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        extended = f" ({_chain[-1]}.yaml extends it)" if _chain else ""
        raise ProfileError(f"no profile {name!r}{extended} (looked for {path}); known profiles: {known}")
    profile = check_profile(read_yaml(path), path)
    parent = profile.pop("extends", None)
    if parent is None:
        return profile
    return merge(load_profile(parent, folder, (*_chain, name)), profile)


def read_yaml(path: Path) -> object:
    """The YAML document in `path`; any failure to read or parse it is a one-line ProfileError naming the file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ProfileError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ProfileError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}): "
                           "save the file as UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML: {yaml_problem(err)}") from None


def yaml_problem(err: yaml.YAMLError) -> str:
    """`<problem> at line L, column C` from a PyYAML error (its own message spans several lines)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def check_profile(profile: object, path: Path) -> dict:
    """`profile` as read from `path` if it has a profile's shape; else a ProfileError saying what is wrong."""
    if profile is None:
        return {}
    if not isinstance(profile, dict):
        raise ProfileError(f"{path}: expected a mapping of {', '.join(sorted(PROFILE_KEYS))}, "
                           f"got {kind(profile)}")
    unknown = set(map(str, profile)) - PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{path}: unknown keys {sorted(unknown)} (a profile has {', '.join(sorted(PROFILE_KEYS))})")
    for key in ("description", "extends"):
        if key in profile and not isinstance(profile[key], str):
            raise ProfileError(f"{path}: {key} must be text, got {kind(profile[key])}")
    for key in ("threads", "jobs"):
        value = profile.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ProfileError(f"{path}: {key} must be a whole number >= 1, got {value!r}")
    check_parameters(profile.get("parameters"), path, "parameters")
    notebooks = profile.get("notebooks")
    if notebooks is not None and not isinstance(notebooks, dict):
        raise ProfileError(f"{path}: notebooks must map notebook names to blocks of parameters, got {kind(notebooks)}")
    for stem, block in (notebooks or {}).items():
        check_parameters(block, path, f"notebooks: {stem}")
    return profile


def check_parameters(block: object, path: Path, where: str) -> None:
    """A ProfileError unless `block` is empty or maps parameter names to values."""
    if block is None:
        return
    if not isinstance(block, dict):
        raise ProfileError(f"{path}: {where} must be a mapping of parameter: value, got {kind(block)}")
    bad = [name for name in block if not (isinstance(name, str) and name.isidentifier())]
    if bad:
        raise ProfileError(f"{path}: {where}: {bad[0]!r} is not a parameter name")


def kind(value: object) -> str:
    """`the number 5`, `a list`: what a YAML value is, for an error message."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return {list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
