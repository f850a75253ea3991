"""Reusable steps. Each is small and idempotent: check → change → verify, with noop."""
from .command import RunCommand
from .files import FileContent, FileLine, Upload
from .packages import Packages
from .services import Daemon, Service

__all__ = ["Daemon", "FileContent", "FileLine", "Packages", "RunCommand", "Service", "Upload"]
