#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from real inputs:
the wire vectors (tests/data/wire-vectors.json), XML-RPC responses in the
shapes PyPI (and src/fake_pypi) sends, wheel names and combined-log lines.
Run from anywhere; it rewrites only files it names (seed-*)."""

import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The order of piwheels::protocol::PROTOCOLS (src/protocol/mod.rs): the
# protocol target's first byte is index * 2 + (0 to master, 1 from master).
PROTOCOLS = [
    "slave_driver", "mr_chase", "master_control", "monitor_stats", "lumberjack",
    "task_control", "slave_driver_control", "big_brother_control", "big_brother",
    "the_scribe", "the_architect", "cloud_gazer", "file_juggler_files",
    "file_juggler_fs", "the_oracle", "sense_stick",
]


def write(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def wire_vectors():
    with open(os.path.join(ROOT, "tests", "data", "wire-vectors.json")) as f:
        root = json.load(f)
    for key in ("vectors", "negative", "decode_only"):
        for v in root[key]:
            payload = bytes.fromhex(v["hex"])
            write("cbor", payload)
            pick = PROTOCOLS.index(v["protocol"]) * 2 + (v["direction"] != "to_master")
            write("protocol", bytes([pick]) + payload)


def changelog(events):
    out = ["<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n"]
    for name, version, ts, action, serial in events:
        out.append("<value><array><data>\n")
        out.append(f"<value><string>{name}</string></value>\n")
        out.append("<value><nil/></value>\n" if version is None
                   else f"<value><string>{version}</string></value>\n")
        out.append(f"<value><int>{ts}</int></value>\n")
        out.append(f"<value><string>{action}</string></value>\n")
        out.append(f"<value><int>{serial}</int></value>\n")
        out.append("</data></array></value>\n")
    out.append("</data></array></value>\n</param>\n</params>\n</methodResponse>\n")
    return "".join(out).encode()


def xmlrpc():
    write("xmlrpc", changelog([]))
    write("xmlrpc", changelog([
        ("foo", None, 1700000000, "create", 1000),
        ("foo", "1.0", 1700000001, "new release", 1001),
        ("foo", "1.0", 1700000002, "add source file foo-1.0.tar.gz", 1002),
        ("foo", "1.0", 1700000003, "add cp311 file foo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", 1003),
        ("foo", "1.0", 1700000004, "yank release", 1004),
        ("foo", "1.0", 1700000005, "unyank release", 1005),
        ("foo", "1.0", 1700000006, "remove release", 1006),
        ("foo", None, 1700000007, "remove project", 1007),
        ("Bar &amp; &lt;baz&gt;", "2.0", 1700000008, "docdestroy", 1008),
    ]))
    write("xmlrpc", (
        "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n"
        "<member>\n<name>faultCode</name>\n<value><int>-32500</int></value>\n</member>\n"
        "<member>\n<name>faultString</name>\n<value><string>HTTPTooManyRequests: The "
        "action could not be performed because there were too many requests by the "
        "client. Limit may reset in 1 seconds.</string></value>\n</member>\n"
        "</struct></value>\n</fault>\n</methodResponse>\n").encode())
    # Untyped strings and i4, as other XML-RPC servers write them.
    write("xmlrpc", b"<methodResponse><params><param><value><array><data>"
          b"<value><array><data><value>foo</value><value>1.0</value>"
          b"<value><i4>1700000000</i4></value><value>new release</value>"
          b"<value><i4>7</i4></value></data></array></value>"
          b"</data></array></value></param></params></methodResponse>")


def wheel_names():
    for n in [
        "numpy-1.26.4-cp311-cp311-linux_armv7l.whl",
        "foo-1.0-py3-none-any.whl",
        "foo-1.0-1-py2.py3-none-any.whl",
        "Foo_Bar-0.1.dev0+local-cp39-abi3-linux_aarch64.whl",
        "pkg-1!2.0-cp311-noabi-linux_armv6l.whl",
        "a-b-c-d-e-f-g.whl",
        "../evil-1.0-py3-none-any.whl",
        ".hidden-1.0-py3-none-any.whl",
        "requests[security,socks] >=2.8.1, ==2.8.* ; python_version < '2.7' and extra == 'x'",
        "name; os_name=='a' or os_name=='b'",
    ]:
        write("wheel_name", n.encode())


def logger():
    pip = ('pip/23.0.1 {"ci":null,"cpu":"armv7l","distro":{"id":"bookworm","libc":'
           '{"lib":"glibc","version":"2.36"},"name":"Raspbian GNU/Linux","version":"12"},'
           '"implementation":{"name":"CPython","version":"3.11.2"},"installer":{"name":'
           '"pip","version":"23.0.1"},"python":"3.11.2","system":{"name":"Linux",'
           '"release":"6.1.0-rpi7-rpi-v7"}}').replace('"', '\\"')
    when = "28/Nov/2026:08:00:00 +0000"
    lines = [
        f'192.0.2.1 - - [{when}] "GET /simple/numpy/numpy-1.26.4-cp311-cp311-linux_armv7l.whl HTTP/1.1" 200 1234 "-" "{pip}"',
        f'192.0.2.2 - - [{when}] "GET /simple/numpy/ HTTP/1.1" 200 1234 "-" "{pip}"',
        f'192.0.2.3 - - [{when}] "GET /project/numpy/ HTTP/1.1" 200 1234 "-" "Mozilla/5.0 (X11; Linux aarch64; rv:128.0) Gecko/20100101 Firefox/128.0"',
        f'192.0.2.4 - - [{when}] "GET /project/numpy/json/ HTTP/1.1" 200 1234 "-" "curl/8.0"',
        f'192.0.2.5 - - [{when}] "GET /packages.html HTTP/1.1" 200 1234 "-" "-"',
        f'192.0.2.6 - - [{when}] "GET /simple/foo/foo-1.0-py3-none-any.whl HTTP/1.1" 404 0 "-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"',
        f'2001:db8::1 - - [{when}] "-" 408 0 "-" "-"',
    ]
    write("logger", b"\x00" + "\n".join(lines).encode())
    for line in lines:
        write("logger", b"\x00" + line.encode())
    write("logger", b"\x01" + f'192.0.2.1 - - [{when}] "GET /simple/ HTTP/1.1" 200 5'.encode())
    write("logger", b"\x02" + f'www.piwheels.org 192.0.2.1 - - [{when}] "GET /simple/ HTTP/1.1" 200 5'.encode())
    write("logger", b"\x03" + f'%h %t "%r" %>s "%{{User-Agent}}i"\n192.0.2.1 [{when}] "GET /simple/a/a-1-py3-none-any.whl HTTP/1.1" 200 "pip/24.0"'.encode())


def file_juggler():
    # Structured (arbitrary) input: any bytes are a valid op list; a few
    # shapes of different lengths to start from.
    for n in (16, 64, 256, 1024):
        write("file_juggler", bytes((i * 37 + n) % 256 for i in range(n)))


if __name__ == "__main__":
    wire_vectors()
    xmlrpc()
    wheel_names()
    logger()
    file_juggler()
