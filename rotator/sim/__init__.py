"""Simulators of the systems Rotator talks to, for tests, the demo and users who want to
rehearse a rotation without touching production."""
