"""Code deployment, in one place: the deployers (r10k, g10k: ``deployers``, ``r10k``), the
deploy steps (``deploy``), setting servers up to deploy from the control repo
(``provision``, ``control_repo``), whether the servers agree (``consistency``), Puppet
Server's environment cache (``envcache``), resource type generation (``resource_types``),
stale environments (``purge``) and the control repo's branch heads (``heads``)."""
