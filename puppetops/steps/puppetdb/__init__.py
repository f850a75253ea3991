"""PuppetDB: which host runs it, and what plans do there (``host``: one rule for the plans
and the CLI's ``--query``), its database, its process and configuration on the PuppetDB host
(``database``, ``control``, ``server``), and each Puppet Server's terminus (``terminus``)."""
