"""Reusable steps. Each is small and idempotent: check → change → verify, with noop."""
from ..basic_steps import FileContent, RunCommand, Upload
from .files import FileEdit, FileLine
from .packages import Packages
from .services import Daemon, Service

__all__ = ["Daemon", "FileContent", "FileEdit", "FileLine", "Packages", "RunCommand", "Service", "Upload"]
