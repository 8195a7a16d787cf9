"""Notifications through apprise: tell people before it breaks.

One well-kept library (apprise) speaks Slack, Teams, email, PagerDuty, webhooks and a hundred
more, so Rotator writes no per-service client. ``[[notify]]`` tables name the URL by
``url_env``/``url_file`` only (it carries the service's token), the events (``on``) and
optionally the credentials.

- ``message``: what a notice says (credential, rotation id, step, reason, next due, a hint;
  never a value);
- ``delivery``: sending it, off the rotation's path: a bounded number of attempts with backoff,
  each failure written to the audit trail and counted, never raised.

The events themselves are chosen around the engine, in ``rotator.followup``.
"""

from rotator.notify.delivery import Notifier, parse_check
from rotator.notify.message import Notice

__all__ = ["Notice", "Notifier", "parse_check"]
