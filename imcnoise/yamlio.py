"""YAML text -> Python data, strictly: plain YAML only (no tags), and a mapping may not name a key
twice (PyYAML keeps the last one silently; a scenario with ``seed:`` twice would run with the other
seed). Every YAML file imcnoise reads (scenarios, chip files) goes through :func:`load`."""

from __future__ import annotations

import yaml


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load(text: str):
    """``yaml.safe_load`` that refuses duplicate keys (a ``yaml.YAMLError``) and nesting too deep to
    read (also a ``yaml.YAMLError``, not a RecursionError)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read") from None
