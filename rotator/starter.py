"""``rotator init``: a commented starter ``rotator.toml`` that loads as written.

Every line says what it means; nothing in it is a secret (bootstrap credentials come from
environment variables). The file is validated with ``rotator.config.parse`` before it is
written, created exclusively (an existing file is never overwritten) and no store is opened.
"""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from pathlib import Path

from rotator.errors import ConfigError

STORE_KINDS = ("file", "vault", "aws")

_HEADER = """\
# rotator.toml: what Rotator rotates, where it keeps the values and how it reaches the targets.
# Written by `rotator init`. No secret belongs in this file: bootstrap credentials come from
# environment variables (or *_file keys), and relative paths are relative to this file.
"""

_STORES = {
    "file": """\
[store]                               # where the rotated values live
kind = "file"                         # the embedded store: one SQLite file, values AES-GCM sealed
path = ".rotator/store.db"            # beside this file; kept at mode 0600
# key_file = ".rotator/master.key"    # the 32-byte key; default: created beside the database,
#                                     # or set ROTATOR_MASTER_KEY (base64) instead
connections_prefix = "airflow/connections"  # Airflow reads its connections under this prefix
""",
    "vault": """\
[store]                               # where the rotated values live
kind = "vault"                        # HashiCorp Vault or OpenBao, KV version 2
url = "http://127.0.0.1:8200"         # the Vault API; use https:// for any other host
auth = "token"                        # token (from $VAULT_TOKEN) | approle | kubernetes | jwt
# token_file = "vault-token"          # or read the token from this file instead of $VAULT_TOKEN
mount = "secret"                      # the KV v2 mount
connections_prefix = "airflow/connections"  # as in Airflow's VaultBackend connections_path
variables_prefix = "airflow/variables"      # as in Airflow's VaultBackend variables_path
""",
    "aws": """\
[store]                               # where the rotated values live
kind = "aws"                          # AWS Secrets Manager; credentials from the usual AWS chain
# region = "eu-west-1"                # default: $AWS_REGION / $AWS_DEFAULT_REGION
# endpoint_url = "https://..."        # only for a Secrets Manager compatible endpoint
connections_prefix = "airflow/connections"  # as in Airflow's SecretsManagerBackend
variables_prefix = "airflow/variables"      # and its variables under this one
""",
}

_TEAMCITY = """
[teamcity]                            # the TeamCity server whose tokens Rotator rotates
url = {url}  # its base URL
token_env = "TEAMCITY_TOKEN"          # the variable holding Rotator's own TeamCity admin token
# token_file = "teamcity-token"       # or read that token from this file
"""

_AIRFLOW = """
[airflow]                             # the Airflow API server whose passwords Rotator rotates
url = {url}  # its base URL
username_env = "AIRFLOW_ADMIN_USER"   # the variable holding the Airflow admin user name
password_env = "AIRFLOW_ADMIN_PASSWORD"  # the variable holding that admin's password
"""

_TEAMCITY_CREDENTIAL = """
[[credentials]]                        # Airflow -> TeamCity: the token Airflow DAGs call it with
name = "airflow-teamcity-token"       # how rotator commands name this credential
type = "teamcity-token"               # a TeamCity access token, minted through the REST API
user = "airflow-bot"                  # the TeamCity user the token belongs to (must exist)
conn_id = "teamcity_default"          # stored as this Airflow connection (type http)
every = "7d"                          # rotate after a week
lifetime = "10d"                      # the token's own expiry at TeamCity (longer than every)
grace = "1d"                          # keep the previous token a day, then revoke it
settle = "15m"                        # never revoke one that was current this recently
# permissions = [{ project = "DataPipelines", permission = "view_project" }]  # least privilege
"""

_AIRFLOW_CREDENTIAL = """
[[credentials]]                        # the Airflow account TeamCity builds act as
name = "teamcity-bot-password"        # how rotator commands name this credential
type = "airflow-password"             # a password changed through Airflow's FAB users API
user = "teamcity-bot"                 # the Airflow user whose password is rotated (must exist)
conn_id = "airflow_teamcity_bot"      # stored as this Airflow connection (login + password)
every = "30d"                         # rotate after thirty days
"""

_NO_CREDENTIALS = """
# No credential yet: run `rotator init --teamcity URL --airflow URL` for examples, or add
# [[credentials]] tables (name, type, user, conn_id, every, ...) as the README shows.
"""


def render(store: str = "file", teamcity: str | None = None, airflow: str | None = None) -> str:
    """The starter file's text. URLs are written as TOML strings (``json.dumps`` quoting is
    valid TOML); ``rotator.config.parse`` decides whether they are acceptable."""
    if store not in STORE_KINDS:
        raise ConfigError(f"--store: expected one of {', '.join(STORE_KINDS)}")
    parts = [_HEADER, "\n", _STORES[store]]
    if teamcity is not None:
        parts.append(_TEAMCITY.format(url=json.dumps(teamcity)))
    if airflow is not None:
        parts.append(_AIRFLOW.format(url=json.dumps(airflow)))
    if teamcity is not None:
        parts.append(_TEAMCITY_CREDENTIAL)
    if airflow is not None:
        parts.append(_AIRFLOW_CREDENTIAL)
    if teamcity is None and airflow is None:
        parts.append(_NO_CREDENTIALS)
    return "".join(parts)


def write(
    path: str | os.PathLike[str],
    store: str = "file",
    teamcity: str | None = None,
    airflow: str | None = None,
) -> tuple[Path, tuple[str, ...]]:
    """Write the starter file at ``path``; return where, and the warnings its settings earn.

    Refuses (``ConfigError``, nothing written) an existing file, a missing directory, and
    anything ``rotator.config.parse`` would refuse (a bad URL, a password in one)."""
    from rotator.config import parse

    target = Path(path)
    text = render(store, teamcity, airflow)
    config = parse(tomllib.loads(text), str(target), base_dir=target.absolute().parent)
    if not target.parent.is_dir():
        raise ConfigError(f"{target}: the directory {target.parent} does not exist")
    try:
        # Exclusive create: never overwrite, even if the file appears meanwhile.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(f"{target} already exists; not overwriting it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {target}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return target, config.warnings


def next_commands(path: Path) -> list[str]:
    """The three commands to try after ``init``, with ``--config`` unless ``path`` is the
    ``./rotator.toml`` the commands find by themselves (with no ``$ROTATOR_CONFIG`` set)."""
    config = ""
    if os.environ.get("ROTATOR_CONFIG") or path.absolute() != Path("rotator.toml").absolute():
        config = f" --config {shlex.quote(str(path))}"
    return [
        f"rotator{config} doctor",
        f"rotator{config} status",
        f"rotator{config} rotate --all --dry-run",
    ]
