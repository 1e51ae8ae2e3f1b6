"""The device's configuration and identity files on its flash.

    /hcp/device.json    written by tools (hcp flash / provision): what this device is
        {"version": 1, "factory_id": "F-0001", "kind": "evaluator"|"qr"|"combined",
         "board": "unix-sim",
         "transport": {"type": "serial", "port": ..., "baud": 115200}
                    | {"type": "mqtt", "host": ..., "port": 1883, "tls": false},
         "buttons": [1, 2, 3, 4, 5]  (optional: level per button, left to right)}
    /hcp/identity.json  written by the firmware on PROVISION (docs/protocol.md §10)
        {"device_id": ..., "hall": ..., "seq_base": n, "session_base": n}
    /hcp/key.bin        the 16..32-byte key, written last: no key = provisioning mode

A bad file is a ConfigError naming the file and the field, and nothing starts with it.
"""

import json
import os

from protocol.messages import KEY_MAX, KEY_MIN, check_id

VERSION = 1
KINDS = {"evaluator": 1, "qr": 2, "combined": 3}
BAUDS = (9600, 57600, 115200, 230400, 460800, 921600)


class ConfigError(Exception):
    pass


def _need(cond, path, what):
    if not cond:
        raise ConfigError("%s: %s" % (path, what))


def _read_json(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError:
        raise ConfigError("%s: missing" % path)
    except ValueError:
        raise ConfigError("%s: not valid JSON" % path)
    _need(isinstance(data, dict), path, "not a JSON object")
    return data


def load_device(root):
    path = root + "/hcp/device.json"
    d = _read_json(path)
    _need(
        d.get("version") == VERSION,
        path,
        "version must be %d, not %r" % (VERSION, d.get("version")),
    )
    fid = d.get("factory_id")
    try:
        check_id(fid, "factory_id")
    except Exception as e:
        raise ConfigError("%s: %s" % (path, e))
    _need(
        d.get("kind") in KINDS,
        path,
        "kind %r is not one of evaluator, qr, combined" % (d.get("kind"),),
    )
    _need(isinstance(d.get("board"), str) and d["board"], path, "board: a profile id")
    t = d.get("transport")
    _need(isinstance(t, dict), path, "transport: an object")
    if t.get("type") == "serial":
        _need(isinstance(t.get("port"), (str, int)), path, "transport.port: a path or UART id")
        _need(
            t.get("baud", 115200) in BAUDS,
            path,
            "transport.baud %r not one of %r" % (t.get("baud"), BAUDS),
        )
    elif t.get("type") == "mqtt":
        _need(isinstance(t.get("host"), str) and t["host"], path, "transport.host: a name")
        p = t.get("port", 1883)
        _need(isinstance(p, int) and 0 < p < 65536, path, "transport.port %r not 1..65535" % (p,))
        _need(isinstance(t.get("tls", False), bool), path, "transport.tls: true or false")
    else:
        raise ConfigError("%s: transport.type %r is not serial or mqtt" % (path, t.get("type")))
    b = d.get("buttons", [1, 2, 3, 4, 5])
    _need(isinstance(b, list) and len(b) == 5 and sorted(b) == [1, 2, 3, 4, 5], path,
          "buttons: the levels 1..5, each once, left to right")  # fmt: skip
    d["buttons"] = b
    return d


def load_identity(root):
    """(identity dict, key) or (None, None) when not provisioned (no key file)."""
    kpath = root + "/hcp/key.bin"
    try:
        with open(kpath, "rb") as f:
            key = f.read()
    except OSError:
        return None, None
    _need(
        KEY_MIN <= len(key) <= KEY_MAX,
        kpath,
        "key of %d bytes, not %d..%d" % (len(key), KEY_MIN, KEY_MAX),
    )
    path = root + "/hcp/identity.json"
    d = _read_json(path)
    for name in ("device_id", "hall"):
        try:
            check_id(d.get(name), name)
        except Exception as e:
            raise ConfigError("%s: %s" % (path, e))
    for name in ("seq_base", "session_base"):
        v = d.get(name)
        _need(isinstance(v, int) and 0 <= v <= 0xFFFFFFFF, path, "%s %r not a uint32" % (name, v))
    return d, key


def store_identity(root, msg):
    """PROVISION: identity first, key last, each replaced atomically (copy, rename)."""
    try:  # noqa: SIM105 (MicroPython has no contextlib)
        os.mkdir(root + "/hcp")
    except OSError:
        pass
    ident = {
        "device_id": msg.device_id,
        "hall": msg.hall,
        "seq_base": msg.seq_base,
        "session_base": msg.session_base,
    }
    _replace(root + "/hcp/identity.json", json.dumps(ident).encode())
    _replace(root + "/hcp/key.bin", bytes(msg.key))


def _replace(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def load_profile(root, board):
    """The board profile: /hcp/board.json on the flash, else hardware/boards/<board>.json."""
    for path in (root + "/hcp/board.json", "hardware/boards/%s.json" % board):
        try:
            with open(path) as f:
                p = json.load(f)
        except OSError:
            continue
        _need(isinstance(p, dict) and p.get("id") == board, path, "not the profile of %r" % board)
        return p
    raise ConfigError("board profile %r: not at %s/hcp/board.json" % (board, root))
