"""Certificate authority work, in one place: the CA's HTTP API (``ca_api``), certificates on
nodes and on the CA (``certs``), enrolment of many nodes (``enrolment``) and the CA's own
state on a server (``authority``). The CSR/key scripts a host runs are Puppet knowledge
(``puppetops.puppet.csr``)."""
