"""agent.toml: a valid file loads; every kind of mistake names its key and expectation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import DEFAULT_REASONS, load_config, parse_config
from edge_agent.errors import ConfigError

EXAMPLE = """
[agent]
hall_id = "H330201001"
data_dir = "data"
listen = "0.0.0.0:8470"
heartbeat_s = 30
utc_offset = "+08:00"

[policy]
invite_s = 10
reason_s = 20
qr_base_url = "https://hub.example.gov.cn/r"

[[policy.reasons]]
code = 501
zh = "服务态度差"
en = "Attitude"
levels = [4, 5]

[outbox]
max_rows = 500000
max_age_days = 14
overflow = "drop_oldest"

[hub]
url = "https://hub.example.gov.cn"
token_file = "hub-token"

[[serial]]
device = "EV-0001"
port = "/dev/ttyUSB0"

[[serial]]
device = "EV-0002"
port = "rfc2217://10.0.0.7:4001"
baud = 9600
"""


def test_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.hall_id == "H330201001"
    assert cfg.data_dir == tmp_path / "data" and cfg.store_path.name == "agent.sqlite3"
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 8470)
    assert cfg.utc_offset_min == 480
    assert cfg.policy.invite_s == 10 and cfg.policy.reasons[0].levels == 0b11000
    assert cfg.outbox.overflow == "drop_oldest" and cfg.outbox.max_age_s == 14 * 86400
    assert cfg.hub.token_file == tmp_path / "hub-token"
    assert [s.device for s in cfg.serial] == ["EV-0001", "EV-0002"]
    assert cfg.serial[1].baud == 9600 and cfg.serial[0].baud == 115200


def test_defaults(tmp_path: Path) -> None:
    cfg = parse_config({"agent": {"hall_id": "H1", "data_dir": "d"}}, base=tmp_path)
    assert cfg.policy.invite_s == 60  # issue 4: default invite window 60 s
    assert cfg.policy.reasons == DEFAULT_REASONS
    assert cfg.outbox.overflow == "block" and cfg.serial == ()
    assert cfg.listen_port == 8470 and cfg.heartbeat_s == 30


def base() -> dict[str, Any]:
    return {"agent": {"hall_id": "H1", "data_dir": "d"}}


BAD = [
    ({"agent": {"data_dir": "d"}}, "agent.hall_id", "required"),
    ({"agent": {"hall_id": "H 1", "data_dir": "d"}}, "agent.hall_id", "A-Za-z0-9"),
    ({"agent": {"hall_id": "H1"}}, "agent.data_dir", "required"),
    ({"agent": {"hall_id": "H1", "data_dir": "d", "listen": "8470"}}, "agent.listen", "host:port"),
    (
        {"agent": {"hall_id": "H1", "data_dir": "d", "heartbeat_s": "30"}},
        "agent.heartbeat_s",
        "integer 1…3600",
    ),
    (
        {"agent": {"hall_id": "H1", "data_dir": "d", "utc_offset": "CST"}},
        "agent.utc_offset",
        "UTC offset",
    ),
    ({"agent": {"hall_id": "H1", "data_dir": "d", "hallid": "x"}}, "agent.hallid", "unknown"),
    ({"policy": {"invite_s": 0}}, "policy.invite_s", "integer 1…3600"),
    ({"policy": {"invite_s": 4000}}, "policy.invite_s", "integer 1…3600"),
    ({"policy": {"reason_required": "yes"}}, "policy.reason_required", "true or false"),
    ({"policy": {"qr_base_url": "ftp://x"}}, "policy.qr_base_url", "http"),
    (
        {"policy": {"reasons": [{"code": 1, "zh": "太长的原因文字超过了二十四字节"}]}},
        "policy.reasons[0].zh",
        "bytes",
    ),
    (
        {"policy": {"reasons": [{"code": 1, "zh": "a", "levels": [6]}]}},
        "policy.reasons[0].levels",
        "levels 1…5",
    ),
    ({"policy": {"reasons": [{"zh": "a"}]}}, "policy.reasons[0].code", "required"),
    (
        {"policy": {"reasons": [{"code": 1, "zh": "a"}, {"code": 1, "zh": "b"}]}},
        "policy.reasons[1].code",
        "repeats",
    ),
    (
        {"policy": {"reasons": [{"code": i, "zh": "a"} for i in range(13)]}},
        "policy.reasons",
        "at most 12",
    ),
    ({"outbox": {"overflow": "drop"}}, "outbox.overflow", "block, drop_oldest, drop_newest"),
    ({"outbox": {"max_rows": 10}}, "outbox.max_rows", "integer 100…"),
    ({"serial": [{"port": "/dev/ttyS0"}]}, "serial[0].device", "required"),
    ({"serial": [{"device": "D1", "port": "ttyS0"}]}, "serial[0].port", "device path"),
    ({"serial": [{"device": "D1", "port": "http://x"}]}, "serial[0].port", "pyserial URL"),
    (
        {"serial": [{"device": "D1", "port": "/dev/a"}, {"device": "D1", "port": "/dev/b"}]},
        "serial[1].device",
        "repeats",
    ),
    (
        {"serial": [{"device": "D1", "port": "/dev/a"}, {"device": "D2", "port": "/dev/a"}]},
        "serial[1].port",
        "repeats",
    ),
    ({"serial": {"device": "D1"}}, "serial", "array of tables"),
    ({"policy": 5}, "policy", "table"),
    ({"mqtt": {}}, "mqtt.host", "required"),
    ({"mqtt": {"host": "b", "port": 70000}}, "mqtt.port", "integer 0…65535"),
    ({"mqtt": {"host": "b", "tls": "yes"}}, "mqtt.tls", "true or false"),
    ({"mqtt": {"host": "b", "username": "a/b"}}, "mqtt.username", "id of 1…32"),
    ({"mqtt": {"host": "b", "qos": 2}}, "mqtt.qos", "unknown"),
    ({"mqtt": 1}, "mqtt", "table"),
]


@pytest.mark.parametrize(("patch", "key", "words"), BAD, ids=[b[1] for b in BAD])
def test_mistakes_name_the_key(tmp_path: Path, patch: dict[str, Any], key: str, words: str) -> None:
    data = base()
    data.update(patch)
    with pytest.raises(ConfigError) as info:
        parse_config(data, base=tmp_path)
    e = info.value
    assert e.key == key and e.code == "config.invalid"
    assert key in e.message.zh and key in e.message.en
    assert words in e.message.en, e.message.en


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[agent\nhall_id = 1", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "TOML" in info.value.message.en and "TOML" in info.value.message.zh
