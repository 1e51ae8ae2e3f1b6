"""Structured logs: one JSON object a line; no keys, no unmasked personal data."""

from __future__ import annotations

import io
import json
import logging

from edge_agent.logs import JsonFormatter, log_event, mask_name, mask_phone


def test_masks() -> None:
    assert [mask_name(n) for n in ("张三", "张小明", "欧阳小明", "张*明", "A")] == [
        "张*",
        "张*明",
        "欧**明",
        "张*明",
        "A*",
    ]
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "861****5678"
    assert mask_phone("138****5678") == "138****5678"
    assert mask_phone("0574-87654321") == "057****4321"


def test_json_lines_scrub_secrets_and_personal_data() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("hcp.test.logs")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_event(
            logger,
            "case.opened",
            key=bytes(range(16)),
            device_key="00112233",
            secret="s3cr3t",
            token="hcpt_x",
            name="张三丰",
            phone="13812345678",
            note="call 13912345678",
            device="EV-1",
            raw=b"\x00\x01",
        )
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    record = json.loads(line)
    assert record["event"] == "case.opened" and record["level"] == "info"
    assert record["key"] == record["device_key"] == record["secret"] == "[redacted]"
    assert record["token"] == "[redacted]" and record["raw"] == "<2 bytes>"
    assert record["name"] == "张*丰" and record["phone"] == "138****5678"
    assert record["device"] == "EV-1" and record["note"] == "call 139****5678"
    for leaked in ("00112233", "s3cr3t", "hcpt_x", "张三丰", "13812345678", "13912345678"):
        assert leaked not in line
