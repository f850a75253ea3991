"""Deploy on git push: a webhook server that turns a forge's signed push into a ``deploy_code``
run for that one environment on main and every compiler.

config (settings and the secret) → providers (which forge, authentic?, what was pushed) →
environments (branch → r10k environment name) → queue (one deploy per environment at a time,
bursts coalesced) → deploy (the plan boundary) → store (SQLite history); app is the WSGI
application and server serves it with waitress.
"""
