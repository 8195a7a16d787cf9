# Rotator: writes the consumer documents and keeps its rotation state (stages, journal, lease)
# beside them under the state prefix. Paths assume mount = "secret" (KV v2),
# connections_prefix = "airflow/connections", variables_prefix = "airflow/variables" and
# state_prefix = "rotator"; change them together with rotator.toml.
path "secret/data/airflow/connections/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/airflow/variables/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/airflow/connections/*" {
  capabilities = ["read", "list"]
}
path "secret/metadata/airflow/variables/*" {
  capabilities = ["read", "list"]
}
path "secret/data/rotator/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "secret/metadata/rotator/*" {
  capabilities = ["read", "list", "delete"]
}
path "secret/delete/rotator/*" {
  capabilities = ["update"]
}
path "secret/destroy/rotator/*" {
  capabilities = ["update"]
}
# Renew its own token (token auth) instead of logging in again.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
