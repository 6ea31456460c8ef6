"""HB/1 §14 test vectors, byte for byte as printed in the spec (shared golden data)."""

from __future__ import annotations

V2_POLL = bytes.fromhex("eb 90 10 05 00 21 01 04 00 06 00 34 12 06 e1")
V3_POLL_REPLY = bytes.fromhex("eb 90 11 00 05 21 01 09 00 00 00 34 12 00 00 00 00 00 af a6")
V4_SHOW_TEXT = bytes.fromhex(
    "eb 90 10 03 00 22 10 18 00 00 02 01 0a 00 00 11 c7 eb 41 30 30 31 ba c5 b5 bd 33 ba c5"
    " b4 b0 bf da 81 09"
)
V5_SHOW_TEXT_REPLY = bytes.fromhex("eb 90 11 00 03 22 10 01 00 00 2d ff")
V6_PAD_RATE_REQ = bytes.fromhex("eb 90 10 05 00 23 22 08 00 be ba fe ca 1e 05 00 01 3a 8b")
V7_POLL_REPLY_RATING = bytes.fromhex(
    "eb 90 11 00 05 24 01 10 00 00 00 34 12 01 07 00 41 07 be ba fe ca 05 00 00 84 5c"
)
V8_SET_TIME = bytes.fromhex("eb 90 12 ff 00 25 04 06 00 90 a0 4a 66 e0 01 2d f2")
V9_INFO_REPLY = bytes.fromhex(
    "eb 90 11 00 05 26 02 27 00 00 03 10 01 02 03 01 02 03 04 05 06 07 08 34 12 70 00 00 01"
    " 03 1f 00 32 10 00 00 00 00 00 00 07 48 42 31 2d 50 41 44 1d b7"
)
V10_POLL_REPLY_KEY = bytes.fromhex(
    "eb 90 15 00 07 40 01 0f 00 00 00 02 01 02 03 00 45 06 08 04 41 30 31 32 c8 89"
)
V11_POLL_REPLY_LOGIN = bytes.fromhex(
    "eb 90 11 00 07 41 01 14 00 00 00 02 01 01 04 00 43 0b 02 09 31 30 32 34 2a 33 37 32 31 f5 b4"
)
V12_SHOW_ROWS = bytes.fromhex(
    "eb 90 10 20 00 50 14 1e 00 00 02 09 0c 41 30 30 31 20 33 ba c5 b4 b0 bf da 02 0c 42 30"
    " 31 35 20 37 ba c5 b4 b0 bf da a7 dd"
)
V13_PAD_CLERK = bytes.fromhex(
    "eb 90 10 05 00 27 20 13 00 07 33 ba c5 b4 b0 bf da 04 31 30 32 34 04 d5 c5 c8 fd 00 e1 65"
)
R2_FALSE_SOF = bytes.fromhex("eb 90 10 00 00 00 00 ff 01")

ALL_FRAMES = (
    V2_POLL,
    V3_POLL_REPLY,
    V4_SHOW_TEXT,
    V5_SHOW_TEXT_REPLY,
    V6_PAD_RATE_REQ,
    V7_POLL_REPLY_RATING,
    V8_SET_TIME,
    V9_INFO_REPLY,
    V10_POLL_REPLY_KEY,
    V11_POLL_REPLY_LOGIN,
    V12_SHOW_ROWS,
    V13_PAD_CLERK,
)
