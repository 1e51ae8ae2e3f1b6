"""Assertion helpers for portable tests (run by pytest and by MicroPython's run.py)."""


def raises(exc_type, code, fn, *args, **kwargs):
    """Call fn and check it raises exc_type whose .code is `code` (None: any code)."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        if code is not None and getattr(e, "code", None) != code:
            raise AssertionError("expected code %r, got %r (%s)" % (code, e.code, e))
        return e
    raise AssertionError("%s not raised by %r" % (exc_type.__name__, fn))


def unhex(s):
    """Hex text (spaces allowed) to bytes, on both Pythons."""
    import binascii

    return binascii.unhexlify(s.replace(" ", ""))


def tohex(b):
    import binascii

    return binascii.hexlify(bytes(b)).decode()
