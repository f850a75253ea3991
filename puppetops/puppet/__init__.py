"""Puppet knowledge shared by steps and plans: package layouts and their paths."""
from .layout import LAYOUTS, Layout, layout_for

__all__ = ["LAYOUTS", "Layout", "layout_for"]
