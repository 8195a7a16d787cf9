"""TeamCity for Airflow: a hook, a deferrable run-build operator, a build sensor and the trigger
they share, all reading the TeamCity token from an Airflow connection that Rotator keeps fresh.

Import what you use from its module (``rotator.provider.teamcity.operators``, ``.sensors``,
``.hooks``, ``.triggers``); this package itself imports nothing.
"""
