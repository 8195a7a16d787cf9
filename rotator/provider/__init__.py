"""Airflow providers that Rotator ships: code that runs inside Airflow's task, triggerer and API
server processes. Each subpackage imports only Airflow and what it talks to, never Rotator's
engine, its stores, hvac or boto3 (a task pays for every import)."""
