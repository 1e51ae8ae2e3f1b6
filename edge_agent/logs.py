"""Structured logs and personal-data masks.

Strategy: the agent logs one JSON object per line to stderr (systemd's journal keeps it;
``journalctl -o cat | jq`` reads it): ``{"ts", "level", "event", ...fields}``. Callers pass
fields as keyword data (``log_event(log, "link.up", device=..., session=...)``), never as
preformatted text, so every line is machine-readable and the filter below sees each value.

Two rules are enforced here, in one place, whatever a caller passes:
- **No secrets.** A field whose name says key, secret or token is replaced by "[redacted]";
  bytes values are never printed (only their length).
- **No unmasked personal data.** Fields named like a name or phone number are masked with
  ``mask_name`` / ``mask_phone`` before they are written (DOMAIN.md: rater identity is
  private, shown masked). The case API stores only masked values in the first place; this is
  the second fence.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_SECRET_WORDS = ("key", "secret", "token", "password", "authorization")
_NAME_FIELDS = ("name", "applicant", "applicant_name", "name_masked", "rater")
_PHONE_FIELDS = ("phone", "phone_masked", "mobile")
_PHONE = re.compile(r"^\+?\d[\d -]{5,18}\d$")
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")  # mainland mobile numbers


def mask_name(name: str) -> str:
    """张三 -> 张*; 张小明 -> 张*明; 欧阳小明 -> 欧**明. Already masked text is kept."""
    name = name.strip()
    if "*" in name or not name:
        return name
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678; short numbers keep their last two digits only."""
    digits = re.sub(r"[^\d*]", "", phone)
    if "*" in digits and digits.count("*") >= 4:
        return digits
    digits = digits.replace("*", "")
    if len(digits) >= 11:
        return digits[:3] + "****" + digits[-4:]
    if len(digits) >= 7:
        return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]
    return "*" * max(4, len(digits))


def is_masked_name(value: str) -> bool:
    return "*" in value


def is_masked_phone(value: str) -> bool:
    return value.count("*") >= 4 and re.fullmatch(r"[\d*]+", value) is not None


def scrub(name: str, value: object) -> object:
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return "[redacted]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        if lowered in _PHONE_FIELDS or _PHONE.match(value):
            return mask_phone(value)
        if lowered in _NAME_FIELDS:
            return mask_name(value)
        return _MOBILE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out["event"] = record.getMessage()
            for k, v in fields.items():
                out[k] = scrub(k, v)
        else:
            out["event"] = "message"
            out["text"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
            out["trace"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event; fields are scrubbed by the formatter."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


def setup_logging(level: str = "info", stream: Any = None) -> None:
    """JSON lines on stderr for the agent's loggers (hcp.*) and uvicorn's."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
