"""Shamir's secret sharing over GF(2^8), as Vault splits its root key.

Each share is the secret's bytes evaluated, byte by byte, on a random
polynomial of degree ``threshold - 1``; the last byte of a share is its x
coordinate (Vault's share layout). Any ``threshold`` shares give the secret
back by Lagrange interpolation at x = 0; fewer give random bytes.
"""

from __future__ import annotations

import secrets

_EXP = [0] * 512
_LOG = [0] * 256


def _init_tables() -> None:
    x = 1
    for i in range(255):
        _EXP[i] = x
        _LOG[x] = i
        # multiply by the generator 3 in GF(2^8) with the AES polynomial 0x11b
        x ^= (x << 1) ^ (0x11B if x & 0x80 else 0)
        x &= 0xFF
    for i in range(255, 512):
        _EXP[i] = _EXP[i - 255]


_init_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def split(secret: bytes, shares: int, threshold: int) -> list[bytes]:
    if not 2 <= threshold <= shares <= 255:
        raise ValueError("need 2 <= threshold <= shares <= 255")
    xs = secrets.SystemRandom().sample(range(1, 256), shares)
    out = [bytearray() for _share in range(shares)]
    for byte in secret:
        coeffs = [byte] + [secrets.randbelow(256) for _coeff in range(threshold - 1)]
        for share, x in zip(out, xs, strict=True):
            y = 0
            for c in reversed(coeffs):  # Horner
                y = _mul(y, x) ^ c
            share.append(y)
    for share, x in zip(out, xs, strict=True):
        share.append(x)
    return [bytes(s) for s in out]


def combine(parts: list[bytes]) -> bytes:
    if len(parts) < 2:
        raise ValueError("less than two parts cannot be used to reconstruct the secret")
    length = len(parts[0])
    if length < 2 or any(len(p) != length for p in parts):
        raise ValueError("all parts must be the same length")
    xs = [p[-1] for p in parts]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate part detected")
    secret = bytearray()
    for idx in range(length - 1):
        value = 0
        for i, xi in enumerate(xs):
            num, den = 1, 1
            for j, xj in enumerate(xs):
                if i != j:
                    num = _mul(num, xj)
                    den = _mul(den, xi ^ xj)
            value ^= _mul(parts[i][idx], _div(num, den))
        secret.append(value)
    return bytes(secret)
