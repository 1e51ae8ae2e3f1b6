from check import raises

from protocol.errors import CborError, ProtocolError


def _boom():
    raise CborError("cbor.tag", "tag 6.1 is outside the profile")


def test_error_carries_code_and_detail():
    e = raises(ProtocolError, "cbor.tag", _boom)
    assert e.detail == "tag 6.1 is outside the profile"
    assert str(e) == "cbor.tag: tag 6.1 is outside the profile"
