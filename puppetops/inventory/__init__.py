"""Bolt v2 inventory: load and validate ``inventory.yaml``, merge group data, select targets.

Modules, in the order data flows through them: ``yaml_lines`` (YAML with line numbers),
``parse`` (validation against the ``schema`` tables, ``config`` checks, ``uri`` parsing),
``resolve`` (references, aliases, clashes, ``merge`` into Targets), ``select`` (target specs).
"""
from .inventory import Inventory

__all__ = ["Inventory"]
