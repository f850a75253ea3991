"""The load balancer in front of the compilers, in one place: its pool of members
(``pool``); one interface for every backend (``backend``: ``Backend``, a member's
``MemberState``) with a class per backend (``haproxy.HAProxy``, ``nginx.Nginx``), chosen once
per LB host (``backends.of``); the record on the LB host of why a member is out, its reason
as data (``out_records``); the steps that take members out and put them back
(``membership``); members a run left out, warned about and put back once healthy
(``left_out``); and LB hosts set up to balance a set of compilers (``balance``)."""
