"""The clients of the systems Rotator rotates credentials at: one HTTP layer and a thin, typed
client per target.

- ``http``: the one HTTP layer (timeouts, retries with backoff, TLS, redaction of every known
  secret before an error is built, malformed answers refused at the edge);
- ``teamcity``: the TeamCity REST calls Rotator makes (``../shared/teamcity-contract.md``);
- ``airflow_api``: the few Airflow 3.3 API calls (log in, set a FAB user's password).

Issuers (``rotator.issuers``) and the parameter sink (``rotator.sinks``) decide what to do;
these modules only say it to the target.
"""
