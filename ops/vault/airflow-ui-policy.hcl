# Airflow's API server, for Rotator's Credentials page (rotator/airflow_plugin), on top of
# airflow-policy.hcl: list the credentials Rotator has locked (the keys under rotator/locks/,
# so the page needs no rotator.toml), read Rotator's rotation state (which version is current or
# previous, version metadata, journal, lease) and the version list of the connection documents.
# Never rotator/pending/* (a value not yet proven), never a write. Give it to the API server's
# token only; schedulers and workers need airflow-policy.hcl alone.
path "secret/metadata/rotator/locks/" {
  capabilities = ["list"]
}
# rotator/state/* is where Rotator kept that state before 2026-12 (now inside the locks).
path "secret/data/rotator/state/*" {
  capabilities = ["read"]
}
path "secret/data/rotator/locks/*" {
  capabilities = ["read"]
}
path "secret/metadata/airflow/connections/*" {
  capabilities = ["read"]
}
