#!/usr/bin/env bash
# One-time Vault/OpenBao setup for Rotator and Airflow on Kubernetes (run with an admin token).
# Uses `bao`; `vault` takes the same arguments.
set -euo pipefail
BAO="${BAO:-bao}"
"$BAO" policy write rotator ops/vault/rotator-policy.hcl
"$BAO" policy write airflow ops/vault/airflow-policy.hcl
"$BAO" auth enable kubernetes 2>/dev/null || true
"$BAO" write auth/kubernetes/config kubernetes_host="https://kubernetes.default.svc:443"
"$BAO" write auth/kubernetes/role/rotator \
    bound_service_account_names=rotator bound_service_account_namespaces=rotator \
    token_policies=rotator token_ttl=1h token_max_ttl=4h
"$BAO" write auth/kubernetes/role/airflow \
    bound_service_account_names=airflow-worker,airflow-scheduler,airflow-api-server \
    bound_service_account_namespaces=airflow \
    token_policies=airflow token_ttl=1h token_max_ttl=24h
