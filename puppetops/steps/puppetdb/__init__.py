"""PuppetDB: its database, its process and configuration on the PuppetDB host (``database``,
``control``, ``server``), and each Puppet Server's terminus (``terminus``)."""
