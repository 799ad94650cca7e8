"""`moa-gateway hash-key`: the SHA-256 of a gateway key read from stdin (or a prompt), for
`auth.api_key_sha256`."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import sys


def run(args: argparse.Namespace) -> int:
    key = getpass.getpass("gateway key: ") if sys.stdin.isatty() else sys.stdin.readline()
    key = key.strip()
    if not key:
        print("moa-gateway: no key given", file=sys.stderr)
        return 2
    print(hashlib.sha256(key.encode()).hexdigest())
    return 0
