"""Reusable steps. Each is small and idempotent: check → change → verify, with noop."""
from .command import RunCommand
from .files import FileContent, FileEdit, FileLine, Upload
from .packages import Packages
from .services import Daemon, Service

__all__ = ["Daemon", "FileContent", "FileEdit", "FileLine", "Packages", "RunCommand", "Service", "Upload"]
