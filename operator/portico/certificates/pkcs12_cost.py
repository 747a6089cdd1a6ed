"""What opening a .pfx will cost, read from its DER before any key is derived.

A PKCS#12 file names its own key-derivation iteration counts (the MAC's, and
each encrypted bag's PBES2/PBKDF2 or PKCS#12-PBE count), up to 2^31. OpenSSL
spends that work before it can even tell a wrong password, so a file is judged
by these numbers first. cryptography does not expose them; this is a small
reader of just the structure that carries them (RFC 7292, RFC 8018), BER
included (indefinite lengths and constructed OCTET STRINGs, as some Windows
and Java exports use).

Bounds, from what real tools write (docs/custom-domains.md has the table):
OpenSSL 3 writes 2,048; Windows 2,000; Java keytool 10,000 (JDK 8u301/11.0.12
and later; older JDKs 50,000 for the bags and 100,000 for the MAC); Bouncy
Castle 1.86 writes 600,000 and, like Java, refuses to read above 5,000,000.
"""

from __future__ import annotations

from dataclasses import dataclass

# One count above this is refused: 1.7x the largest default any tool above writes.
MAX_ITERATIONS = 1_000_000
# All counts together (a file may carry many bags, each with its own count):
# about a second of one core for a password attempt.
MAX_TOTAL_ITERATIONS = 4_000_000
# Nesting deeper than this is no real export (safeContentsBag inside safeContentsBag).
MAX_DEPTH = 8

_PKCS7_DATA = "1.2.840.113549.1.7.1"
_PKCS7_ENCRYPTED = "1.2.840.113549.1.7.6"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_SAFE_CONTENTS_BAG = "1.2.840.113549.1.12.10.1.6"
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_PBMAC1 = "1.2.840.113549.1.5.14"
# PKCS#12 PBE (pbeWithSHAAnd...: 1.2.840.113549.1.12.1.1-6) and PKCS#5 v1.5 PBES1.
_PKCS12_PBE_PREFIX = "1.2.840.113549.1.12.1."
_PBES1 = frozenset(f"1.2.840.113549.1.5.{n}" for n in (1, 3, 4, 6, 10, 11))

_SEQUENCE, _INTEGER, _OCTETS, _OID = 0x30, 0x02, 0x04, 0x06
# Indefinite-length encodings nested deeper than this are no PKCS#12 file.
_MAX_NESTING = 32
_EXPLICIT_0 = 0xA0


class Malformed(ValueError):
    """Not the PKCS#12 structure; the caller reports it as an unreadable .pfx."""


@dataclass(frozen=True)
class Count:
    where: str  # "MAC", "private key", "certificates"
    iterations: int
    # A key derivation other than PBKDF2 (scrypt, ...), refused whatever its cost.
    unsupported: str = ""


@dataclass(frozen=True)
class _Tlv:
    tag: int
    content: bytes


def _read(data: bytes, pos: int, depth: int = 0) -> tuple[_Tlv, int]:
    """One TLV at POS; returns it and the position after it (BER, definite or not)."""
    if depth > _MAX_NESTING:
        raise Malformed("nested too deep")
    if pos + 2 > len(data):
        raise Malformed("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise Malformed("multi-byte tags are not used by PKCS#12")
    first, pos = data[pos + 1], pos + 2
    if first == 0x80:  # indefinite length: constructed, ends with 00 00
        if not tag & 0x20:
            raise Malformed("indefinite length on a primitive")
        start = pos
        while True:
            if data[pos : pos + 2] == b"\0\0":
                return _Tlv(tag, data[start:pos]), pos + 2
            _, pos = _read(data, pos, depth + 1)
    if first & 0x80:
        size = first & 0x7F
        if size > 4 or pos + size > len(data):
            raise Malformed("length")
        length, pos = int.from_bytes(data[pos : pos + size], "big"), pos + size
    else:
        length = first
    if pos + length > len(data):
        raise Malformed("truncated")
    return _Tlv(tag, data[pos : pos + length]), pos + length


def _items(content: bytes) -> list[_Tlv]:
    out, pos = [], 0
    while pos < len(content):
        if content[pos : pos + 2] == b"\0\0":
            break  # end of an indefinite-length parent
        item, pos = _read(content, pos)
        out.append(item)
    return out


def _one(data: bytes) -> _Tlv:
    item, _ = _read(data, 0)
    return item


def _expect(item: _Tlv, tag: int) -> _Tlv:
    if item.tag != tag:
        raise Malformed(f"expected tag {tag:#x}, found {item.tag:#x}")
    return item


def _octets(item: _Tlv) -> bytes:
    """An OCTET STRING's bytes, joining the chunks of a constructed (BER) one."""
    if item.tag == _OCTETS:
        return item.content
    if item.tag == _OCTETS | 0x20:
        return b"".join(_octets(chunk) for chunk in _items(item.content))
    raise Malformed("expected an OCTET STRING")


def _int(item: _Tlv) -> int:
    _expect(item, _INTEGER)
    if not item.content:
        raise Malformed("empty INTEGER")
    return int.from_bytes(item.content, "big", signed=True)


def _oid(item: _Tlv) -> str:
    raw = _expect(item, _OID).content
    if not raw:
        raise Malformed("empty OID")
    arcs, value = [], 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _algorithm(item: _Tlv, where: str) -> list[Count]:
    """The counts an encryption AlgorithmIdentifier asks for (none for a plain cipher)."""
    parts = _items(_expect(item, _SEQUENCE).content)
    if not parts:
        raise Malformed("empty AlgorithmIdentifier")
    oid = _oid(parts[0])
    known = oid.startswith(_PKCS12_PBE_PREFIX) or oid in _PBES1 or oid in (_PBES2, _PBMAC1)
    if not known:
        return []
    params = _items(_expect(parts[1], _SEQUENCE).content) if len(parts) > 1 else []
    if oid.startswith(_PKCS12_PBE_PREFIX) or oid in _PBES1:
        if len(params) < 2:
            raise Malformed("PBE parameters")
        return [Count(where, _int(params[1]))]
    if oid in (_PBES2, _PBMAC1):
        if not params:
            raise Malformed("PBES2 parameters")
        kdf = _items(_expect(params[0], _SEQUENCE).content)
        if not kdf or _oid(kdf[0]) != _PBKDF2:
            # scrypt and anything newer: no real export uses them in a .pfx, and their
            # cost is not one number; refused rather than guessed at.
            name = _oid(kdf[0]) if kdf else "none"
            return [Count(where, MAX_ITERATIONS + 1, unsupported=name)]
        kdf_params = _items(_expect(kdf[1], _SEQUENCE).content) if len(kdf) > 1 else []
        if len(kdf_params) < 2:
            raise Malformed("PBKDF2 parameters")
        return [Count(where, _int(kdf_params[1]))]
    return []


def _safe_contents(safe: _Tlv, depth: int) -> list[Count]:
    if depth > MAX_DEPTH:
        raise Malformed("nested too deep")
    counts: list[Count] = []
    for bag in _items(_expect(safe, _SEQUENCE).content):
        parts = _items(_expect(bag, _SEQUENCE).content)
        if len(parts) < 2:
            raise Malformed("SafeBag")
        kind, value = _oid(parts[0]), _items(_expect(parts[1], _EXPLICIT_0).content)
        if not value:
            raise Malformed("empty SafeBag")
        if kind == _SHROUDED_KEY_BAG:
            info = _items(_expect(value[0], _SEQUENCE).content)
            if not info:
                raise Malformed("EncryptedPrivateKeyInfo")
            counts += _algorithm(info[0], "private key")
        elif kind == _SAFE_CONTENTS_BAG:
            counts += _safe_contents(value[0], depth + 1)
    return counts


def iteration_counts(data: bytes) -> list[Count]:
    """Every key-derivation count the file asks for; Malformed if it is not PKCS#12."""
    try:
        return _counts(data)
    except (IndexError, RecursionError) as err:  # a short read, or a pathological nesting
        raise Malformed("truncated or nested too deep") from err


def _counts(data: bytes) -> list[Count]:
    pfx = _items(_expect(_one(data), _SEQUENCE).content)
    if len(pfx) < 2 or _int(pfx[0]) != 3:
        raise Malformed("not a PKCS#12 version 3 PFX")
    counts: list[Count] = []
    if len(pfx) > 2:  # MacData ::= SEQUENCE { DigestInfo, salt, iterations DEFAULT 1 }
        mac = _items(_expect(pfx[2], _SEQUENCE).content)
        if len(mac) > 2:
            counts.append(Count("MAC", _int(mac[2])))
        digest = _items(_expect(mac[0], _SEQUENCE).content) if mac else []
        if digest:  # PBMAC1 (RFC 9579) carries its count in the algorithm instead
            counts += [c for c in _algorithm(digest[0], "MAC") if c.iterations > 1]
    auth_safe = _items(_expect(pfx[1], _SEQUENCE).content)
    if len(auth_safe) < 2 or _oid(auth_safe[0]) != _PKCS7_DATA:
        return counts  # public-key integrity mode: no password-derived keys to count
    wrapped = _items(_expect(auth_safe[1], _EXPLICIT_0).content)
    if not wrapped:
        raise Malformed("empty authSafe")
    for info in _items(_expect(_one(_octets(wrapped[0])), _SEQUENCE).content):
        parts = _items(_expect(info, _SEQUENCE).content)
        if len(parts) < 2:
            continue
        kind, content = _oid(parts[0]), _items(_expect(parts[1], _EXPLICIT_0).content)
        if not content:
            continue
        if kind == _PKCS7_DATA:
            counts += _safe_contents(_one(_octets(content[0])), 0)
        elif kind == _PKCS7_ENCRYPTED:  # EncryptedData ::= { version, EncryptedContentInfo }
            encrypted = _items(_expect(content[0], _SEQUENCE).content)
            inner = _items(_expect(encrypted[1], _SEQUENCE).content)
            counts += _algorithm(inner[1], "certificates")
    return counts


def too_expensive(counts: list[Count]) -> str | None:
    """Why these counts are refused, in words; None when they are within the bounds."""
    for count in counts:
        if count.unsupported:
            return (
                f"its {count.where} is protected with a key derivation Portico does not "
                f"accept (OID {count.unsupported}; PBKDF2 and PKCS#12's own are accepted)"
            )
    worst = max(counts, key=lambda c: c.iterations, default=None)
    if worst is not None and worst.iterations > MAX_ITERATIONS:
        return (
            f"{worst.iterations:,} key-derivation iterations protect its {worst.where} "
            f"(Portico accepts at most {MAX_ITERATIONS:,})"
        )
    total = sum(c.iterations for c in counts)
    if total > MAX_TOTAL_ITERATIONS:
        return (
            f"it asks for {total:,} key-derivation iterations over {len(counts)} parts "
            f"(Portico accepts at most {MAX_TOTAL_ITERATIONS:,} in all)"
        )
    return None
