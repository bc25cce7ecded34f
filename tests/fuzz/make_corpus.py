#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (run from anywhere; rewrites them).

Targets that read their input through FuzzedDataProvider get seeds laid out the way it reads
them: strings from the front (a backslash and another byte end one), integers and booleans from
the back, the last byte first.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class Provider:
    """Builds an input for FuzzedDataProvider, in the order the target consumes it."""

    def __init__(self):
        self.front = b""
        self.back = []  # in consumption order

    def int_in_range(self, lo, hi, value):
        span, offset, out = hi - lo, 0, []
        while offset < 64 and (span >> offset) > 0:
            out.append(0)
            offset += 8
        v = value - lo
        for i in range(len(out)):  # the first byte read is the most significant
            out[i] = (v >> (8 * (len(out) - 1 - i))) & 0xFF
        self.back += out
        return self

    def boolean(self, value):
        self.back.append(1 if value else 0)
        return self

    def string(self, s):
        self.front += s.replace(b"\\", b"\\\\") + b"\\x"
        return self

    def rest(self, s):
        self.front += s
        return self

    def bytes(self):
        return self.front + bytes(reversed(self.back))


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt(header, claims, key):
    signing = b64(header) + b"." + b64(claims)
    return signing + b"." + b64(hmac.new(key, signing, hashlib.sha256).digest())


CODEC = {
    "login": '{"id":1,"cmd":"login","body":{"token":"abc.def.ghi","device":"d1"}}',
    "send": '{"id":2,"cmd":"chat.send","body":{"to":"bob","cid":"c1","body":"hi","extra":{"k":[1,2]}}}',
    "group_send": '{"id":3,"cmd":"chat.send","body":{"group":"g1","cid":"c2","type":"image","body":"\\u00e9\\ud83d\\ude00"}}',
    "sync": '{"id":4,"cmd":"chat.sync","body":{"after":"0","seq":18446744073709551615}}',
    "ping": '{"cmd":"ping"}',
    "null_body": '{"cmd":"ping","body":null,"id":4294967295}',
    "id_too_big": '{"id":4294967296,"cmd":"ping"}',
    "id_float": '{"id":7.0,"cmd":"ping"}',
    "id_exp": '{"id":1e2,"cmd":"ping"}',
    "id_string": '{"id":"7","cmd":"ping"}',
    "cmd_empty": '{"cmd":""}',
    "cmd_65": '{"cmd":"' + "c" * 65 + '"}',
    "body_array": '{"cmd":"ping","body":[1]}',
    "trailing": '{"cmd":"ping"} x',
    "not_object": "[]",
    "empty": "",
    "bad_utf8": b'{"cmd":"p\xff"}',
    "lone_surrogate": '{"id":9,"cmd":"chat.send","body":{"body":"\\ud800"}}',
    "nul_escape": '{"cmd":"a\\u0000b","body":{"body":"x\\u0000y"}}',
    "duplicate_keys": '{"id":1,"id":2,"cmd":"a","cmd":"b"}',
    "nested": '{"cmd":"x","body":{"a":' + "[" * 64 + "]" * 64 + "}}",
    "numbers": '{"cmd":"n","body":{"a":-0,"b":1.5e308,"c":-9223372036854775809,"d":1e-400}}',
}

framing = Provider().int_in_range(1, 512, 64).boolean(True).int_in_range(0, 16, 3)
for p in (b'{"cmd":"ping"}', b"x", b"y" * 64):
    framing.string(p)
for size in (1, 3, 32, 7, 2):
    framing.int_in_range(1, 32, size)
FRAMING = {"three_frames": framing.bytes()}
raw = (struct.pack(">I", 5) + b"hello" + struct.pack(">I", 2) + b"hi")
for name, stream, limit in (
        ("raw_two", raw, 512),
        ("raw_zero_length", struct.pack(">I", 1) + b"a" + struct.pack(">I", 0) + b"zz", 512),
        ("raw_too_big", struct.pack(">I", 3) + b"abc" + struct.pack(">I", 513), 512),
        ("raw_huge", struct.pack(">I", 0xFFFFFFFF) + b"x", 1),
        ("raw_partial", struct.pack(">I", 10) + b"abc", 16),
        ("raw_at_limit", struct.pack(">I", 8) + b"12345678", 8)):
    p = Provider().int_in_range(1, 512, limit).boolean(False).string(stream)
    for size in (1, 2, 4, 32):
        p.int_in_range(1, 32, size)
    FRAMING[name] = p.bytes()

KEY = b"k" * 32  # the "default" key of fuzz_jwt.cc
HEADER = b'{"alg":"HS256","typ":"JWT"}'
CLAIMS = b'{"sub":"alice","iat":1700000000,"exp":1700003600}'
JWT = {
    "valid": Provider().int_in_range(0, 2, 0).rest(jwt(HEADER, CLAIMS, KEY)).bytes(),
    "wrong_key": Provider().int_in_range(0, 2, 0).rest(jwt(HEADER, CLAIMS, b"x")).bytes(),
    "alg_none": Provider().int_in_range(0, 2, 0).rest(
        b64(b'{"alg":"none"}') + b"." + b64(CLAIMS) + b".").bytes(),
    "padded": Provider().int_in_range(0, 2, 0).rest(b"eyJhbGciOiJIUzI1NiJ9==.e30.AA").bytes(),
    "two_segments": Provider().int_in_range(0, 2, 0).rest(b"abc.def").bytes(),
    "signed_valid": Provider().int_in_range(0, 2, 1).string(HEADER).rest(CLAIMS).bytes(),
    "signed_tenant": Provider().int_in_range(0, 2, 1).string(HEADER).rest(
        b'{"sub":"bob","ten":"acme","exp":1700003600,"nbf":1699999990}').bytes(),
    "signed_crit": Provider().int_in_range(0, 2, 1).string(
        b'{"alg":"HS256","crit":["x"]}').rest(CLAIMS).bytes(),
    "signed_dup_alg": Provider().int_in_range(0, 2, 1).string(
        b'{"alg":"HS256","alg":"none"}').rest(CLAIMS).bytes(),
    "claims_expired": Provider().int_in_range(0, 2, 2).rest(
        b'{"sub":"a","exp":1600000000}').bytes(),
    "claims_huge_exp": Provider().int_in_range(0, 2, 2).rest(
        b'{"sub":"a","exp":253402300800}').bytes(),
    "claims_float": Provider().int_in_range(0, 2, 2).rest(b'{"sub":"a","exp":1.7e9}').bytes(),
    "claims_dup_sub": Provider().int_in_range(0, 2, 2).rest(
        b'{"sub":"a","sub":"b","exp":1800000000}').bytes(),
    "claims_bad_id": Provider().int_in_range(0, 2, 2).rest(
        b'{"sub":"a b\\u0000","exp":1800000000}').bytes(),
    "claims_nul": Provider().int_in_range(0, 2, 2).rest(
        b'{"sub":"a","exp":1800000000}\x00junk').bytes(),
}

HTTP_PATH = {}
for i, (name, target) in enumerate((
        (b"after", b"/v1/groups/g1/members?after=a%2Bc&limit=10"),
        (b"limit", b"/v1/groups/g1/members?after=a+c&limit=10"),
        (b"user", b"/v1/users/%E6%95%8F/messages?user=x%20y"),
        (b"q", b"/v1//x///y?q"),
        (b"q", b"/v1/a%2Fb%3Fc?q=%"),
        (b"q", b"/v1/a?q=%4"),
        (b"q", b"/v1/a?q=%zz&q=2"),
        (b"", b"/?=&=x&&"),
        (b"k", b"/%00/%ff?k=%00%FF"),
        (b"a", b"?a=1?b=2"))):
    HTTP_PATH["seed%02d" % i] = Provider().string(name).rest(target).bytes()

CONFIG = {
    "full": """data = "./data"
[server]
node_id = "n1"
node_number = 3
tcp = "127.0.0.1:7001"
http = "127.0.0.1:7000"
io_threads = 2
worker_threads = 2
max_frame_bytes = 65536
send_queue_bytes = 1048576
drain_timeout_ms = 10000
kick_policy = "per_device"
event_log = ""
[storage]
inbox = "memory:"
sync_writes = true
compression = false
write_buffer_bytes = 4194304
retention_s = 604800
max_inbox = 10000
[auth]
token_leeway_s = 30
[filter]
words_file = "words.txt"
mode = "mask"
[web]
open_registration = true
default_token_ttl_s = 3600
[log]
level = "debug"
console = false
file = ""
[keys]
default = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
[admin_keys]
ops = "a-long-admin-key-0123456789"
""",
    "empty": "",
    "unknown_key": "[server]\nno_such_key = 1\n",
    "wrong_type": '[server]\nio_threads = "two"\n',
    "negative": "[server]\nmax_frame_bytes = -1\nio_threads = 0\n",
    "huge": "[server]\nsend_queue_bytes = 9223372036854775807\n",
    "bad_level": '[log]\nlevel = "loud"\n',
    "bad_policy": '[server]\nkick_policy = "sometimes"\n',
    "short_admin_key": '[admin_keys]\nops = "short"\n',
    "keys_not_string": "[keys]\ndefault = 1\n",
    "server_not_table": 'server = "x"\n',
    "syntax_error": "[server\nio_threads = 2\n",
    "array_tables": "[[server]]\nio_threads = 2\n",
    "inline_table": 'server = { io_threads = 2, tcp = "x" }\n',
    "dates": "data = 1979-05-27T07:32:00Z\n",
    "floats": "[server]\nio_threads = 2.0\nheartbeat_s = inf\n",
    "float_too_big": "[server]\nio_threads = 2" + "8" * 63 + ".1\n",
    "multiline": 'data = """\nx\\\n  y"""\n[log]\nfile = \'\'\'raw\\path\'\'\'\n',
    "bad_utf8": b'data = "\xff"\n',
    "dotted_keys": 'server.io_threads = 2\nlog.level = "warn"\n',
    "duplicate": "[server]\nio_threads = 1\nio_threads = 2\n",
}

FILTER = {
    "clean": "hello there, a class of its own",
    "match": "what the fuck",
    "spelled": "f.u.c.k and f u c k",
    "fullwidth": "ＦＵＣＫ ｆｏｏ",
    "cjk": "这是敏 感 词吗",
    "accents": "fu\u0301ck an\u0303o ano",
    "zero_width": "fu\u200bck \u00adass",
    "sharp_s": "STRASSE straße",
    "ligature": "\ufdfa \U0001F600\U0001F600",
    "mixed": "x y z xyz x.y.z a.b ab",
    "invalid": b"fu\xffck \xed\xa0\x80",
    "truncated": b"ok \xe6\x95",
    "overlong": b"\xc0\xaf\xe0\x80\xaf",
    "combining_only": "\u0301\u0301 \u20dd",
    "astral_marks": "\U0001D400ss\U000E0100 \U0001F1FA\U0001F1F8",
}

write("codec", CODEC)
write("framing", FRAMING)
write("jwt", JWT)
write("http_path", HTTP_PATH)
write("config", CONFIG)
write("filter", FILTER)
