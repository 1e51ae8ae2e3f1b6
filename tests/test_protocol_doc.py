"""docs/protocol.md's generated tables match the catalogue and the session table."""

from tools import protocol_doc


def test_protocol_doc_is_current() -> None:
    assert protocol_doc.main(["--check"]) == 0, "run: python -m tools.protocol_doc"
