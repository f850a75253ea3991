"""The load balancer in front of the compilers, in one place: its pool of members
(``pool``), the HAProxy and nginx backends (``haproxy``, ``nginx``), members' state at run
time (``runtime``), the record on the LB host of why a member is out (``out_records``), and
the steps that take members out and put them back (``membership``)."""
