"""Transports: how puppetops reaches a target (SSH on a paramiko client per target, with a
Fabric ``Connection`` on it on demand; or the local machine)."""
from .base import CommandOutput, Connection
from .local import LocalConnection
from .pool import ConnectionPool
from .ssh import SshConnection

__all__ = ["CommandOutput", "Connection", "ConnectionPool", "LocalConnection", "SshConnection"]
