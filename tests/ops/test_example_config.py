"""One example ``rotator.toml``: ``ops/rotator.example.toml`` is the README's block byte for
byte, parses as the three credentials it describes, and is what ``rotator demo`` runs on (only
the URLs and the demo's own additions differ)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from rotator.config import load
from rotator.demo import Demo, demo_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "ops" / "rotator.example.toml"
LOOPBACK = {
    "vault_url": "http://127.0.0.1:18200",
    "teamcity_url": "http://127.0.0.1:18111",
    "airflow_url": "http://127.0.0.1:18080",
}


def readme_block() -> str:
    section = (ROOT / "README.md").read_text().split("## Configuration: `rotator.toml`\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the configuration section shows one toml block"
    return blocks[0]


def test_the_readme_shows_the_example_file_byte_for_byte():
    assert readme_block() == EXAMPLE.read_text()


def test_the_example_parses_into_the_three_credentials_it_describes():
    config = load(EXAMPLE)
    assert config.store_kind == "vault"
    token, password, jwt = config.credentials
    assert (token.name, token.type, token.user) == (
        "airflow-teamcity-token",
        "teamcity-token",
        "airflow-bot",
    )
    assert token.conn_id == "teamcity_default"
    assert (password.name, password.type, password.user) == (
        "teamcity-bot-password",
        "airflow-password",
        "teamcity-bot",
    )
    assert (jwt.name, jwt.type, jwt.login_from) == (
        "teamcity-airflow-token",
        "airflow-token",
        "teamcity-bot-password",
    )
    assert [p.parameter for p in jwt.push] == ["env.AIRFLOW_API_TOKEN"]
    assert (
        "optional"
        in readme_block()
        .split('name = "teamcity-airflow-token"')[0]
        .rsplit("[[credentials]]", 1)[1]
    ), "the README marks the TeamCity -> Airflow token optional (build identity)"


def test_the_demo_runs_on_the_example_with_only_urls_and_its_own_additions_changed(tmp_path):
    demo = Demo(tmp_path / "demo", out=lambda _text: None)
    demo.urls = dict(LOOPBACK)
    demo.write_config(standing=True)
    written = (demo.workdir / "rotator.toml").read_text()
    assert written.startswith("# Written by `rotator demo` from ops/rotator.example.toml")
    ours = tomllib.loads(written)
    example = tomllib.loads(EXAMPLE.read_text())

    for table, key in (
        ("store", "vault_url"),
        ("teamcity", "teamcity_url"),
        ("airflow", "airflow_url"),
    ):
        assert ours[table].pop("url") == LOOPBACK[key]
        example[table].pop("url")
        assert ours[table] == example[table], table
    assert ours.pop("rotator") == {"audit_file": "logs/audit.jsonl"}
    assert ours.pop("identity")["issuer"] == f"{LOOPBACK['teamcity_url']}/app/oidc-jwt"
    extra = ours["credentials"][0]["permissions"].pop()
    assert extra == {"project": "DataPipelines", "permission": "run_build"}
    assert ours == example, "nothing else differs from the example"

    config = load(demo.workdir / "rotator.toml")  # and Rotator reads what the demo wrote
    assert [c.name for c in config.credentials] == [c.name for c in load(EXAMPLE).credentials]
    assert Path(config.engine.audit_file) == demo.workdir / "logs" / "audit.jsonl"


def test_step_5_takes_the_standing_token_out_of_the_demo_config_and_nothing_else(tmp_path):
    demo = Demo(tmp_path / "demo", out=lambda _text: None)
    demo.urls = dict(LOOPBACK)
    demo.write_config(standing=False)
    text = (demo.workdir / "rotator.toml").read_text()
    assert "# teamcity-airflow-token: retired (step 5)" in text
    assert 'name = "teamcity-airflow-token"' not in text
    retired = [c.name for c in load(demo.workdir / "rotator.toml").credentials]
    assert retired == ["airflow-teamcity-token", "teamcity-bot-password"]
    standing = demo_config(LOOPBACK)
    standing["credentials"].pop()
    assert tomllib.loads(text) == standing
