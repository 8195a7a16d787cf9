# Airflow (scheduler, workers, API server, DAG processor): read the consumer documents, nothing
# else. It cannot see Rotator's state, cannot write, and cannot list what exists.
path "secret/data/airflow/connections/*" {
  capabilities = ["read"]
}
path "secret/data/airflow/variables/*" {
  capabilities = ["read"]
}
path "secret/data/airflow/config/*" {
  capabilities = ["read"]
}
