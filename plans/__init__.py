"""puppetops' lifecycle plans (installed as ``puppetops.plans``).

``from puppetops.plans import facts`` imports a plan; each module registers its plan with
``@plan`` on import, and ``puppetops.plan.discover()`` imports them all.
"""
