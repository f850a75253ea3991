"""Transports: how puppetops reaches a target (SSH through Fabric, or the local machine)."""
from .base import CommandOutput, Connection
from .local import LocalConnection
from .pool import ConnectionPool
from .ssh import SshConnection

__all__ = ["CommandOutput", "Connection", "ConnectionPool", "LocalConnection", "SshConnection"]
