"""Rotator: keeps the credentials between TeamCity and Airflow fresh.

The public surface is small on purpose; the modules below are implementation.
"""

from __future__ import annotations

import logging

from rotator.errors import ConfigError, RotationError, RotatorError

__all__ = ["ConfigError", "RotationError", "RotatorError", "__version__"]
__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
