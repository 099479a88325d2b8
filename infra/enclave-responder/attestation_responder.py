#!/usr/bin/env python3
"""The reference responder of the enclave attestation protocol, version 1 (README: "Enclave attestation
protocol"). It runs inside the enclave, listens on vsock port 5005 and answers each request with an attestation
document from the Nitro Security Module (NSM), binding the parent agent's nonce (and the optional user data
and public key) into it, or, asked `{v: 1, metrics: true}`, with the enclave's runtime metrics read from its
own /proc (CPU busy since the last sample, memory in use, uptime), which the parent cannot see from outside.

Why Python: an enclave image is any Docker image, and Python's standard library alone reaches everything the
responder needs, with nothing to compile or to install from a package index: AF_VSOCK sockets (the `socket`
module, Linux), the NSM's ioctl on /dev/nsm (`fcntl` and `ctypes`), TLS (`ssl`) and, for the key release,
RSA and AES from its integers and hashes. Its CBOR is the few lines below, a
strict subset: definite lengths, no tags, no floats. Add this file to a workload image and start it beside the
workload (e.g. `CMD python3 /opt/attestation_responder.py & exec <workload>`).

The NSM call is one seam, `Nsm.process(request_bytes) -> response_bytes` (the NSM's own CBOR messages):
`NsmDevice` does the ioctl on /dev/nsm, as aws-nitro-enclaves-nsm-api's driver does (the request and a 12 KiB
response buffer as two iovecs, request code _IOWR(0x0A, 0, 32)); `SocketNsm` sends the same bytes to a stand-in
(the repository's tests and local stack answer them with the Nitro simulator). Only `NsmDevice` needs Nitro
hardware; everything else is tested here.

The same file is the workload's key release (below, "key release"): `attestation_responder.py decrypt` takes
the answer of `POST /contracts/{id}/data-keys` and prints the data key KMS releases to this enclave against its
attestation document, or says why not, as AWS's kmstool-enclave-cli does; a Python workload may import
`release_data_key` instead. It needs Python 3.8 or later.

Usage: attestation_responder.py [--listen vsock:5005 | tcp:HOST:PORT] [--nsm /dev/nsm | tcp:HOST:PORT]
       attestation_responder.py decrypt --in FILE|- [--region REGION] [--kms vsock:3:8000 | https://HOST[:PORT]
           | http://HOST:PORT] [--nsm /dev/nsm | tcp:HOST:PORT]   (the parent's credentials in AWS_ACCESS_KEY_ID,
           AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; prints the data key in base64; exit 0 released, 1 refused
           or unreachable, 2 usage)
"""

import argparse
import base64
import ctypes
import datetime
import fcntl
import hashlib
import hmac
import http.client
import json
import math
import os
import secrets
import socket
import ssl
import struct
import sys
import threading
import urllib.parse

PROTOCOL_VERSION = 1
ATTESTATION_PORT = 5005
MAX_REQUEST_FRAME = 4096
NONCE_BYTES = (1, 512)
USER_DATA_BYTES = (0, 512)
PUBLIC_KEY_BYTES = (1, 1024)
# A client has this long to send its request once connected.
REQUEST_TIMEOUT_SECONDS = 5.0
# Connections served at once; further ones wait in the listen backlog.
MAX_CONCURRENT = 8


class CborError(ValueError):
    pass


def cbor_encode(value):
    """Preferred serialization of None, bool, non-negative int, bytes, str, list and dict (str keys)."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int) and value >= 0:
        return _head(0, value)
    if isinstance(value, (bytes, bytearray)):
        return _head(2, len(value)) + bytes(value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(cbor_encode(item) for item in value)
    if isinstance(value, dict):
        out = [_head(5, len(value))]
        for key, item in value.items():
            if not isinstance(key, str):
                raise CborError("map keys must be text")
            out.append(cbor_encode(key))
            out.append(cbor_encode(item))
        return b"".join(out)
    raise CborError("cannot encode %s" % type(value).__name__)


def _head(major, argument):
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([major << 5 | info]) + argument.to_bytes(size, "big")
    raise CborError("integer too large")


def cbor_decode(data):
    """Exactly one data item filling `data`, from the subset `cbor_encode` writes (plus negative integers)."""
    value, offset = _decode(bytes(data), 0, 0)
    if offset != len(data):
        raise CborError("bytes after the data item")
    return value


def _decode(data, offset, depth):
    if depth > 16:
        raise CborError("nested too deeply")
    if offset >= len(data):
        raise CborError("truncated")
    initial = data[offset]
    major, info = initial >> 5, initial & 0x1F
    offset += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info not in simple:
            raise CborError("unsupported simple value or float")
        return simple[info], offset
    if info < 24:
        argument = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if offset + size > len(data):
            raise CborError("truncated")
        argument = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    else:
        raise CborError("indefinite or reserved length")
    if major == 0:
        return argument, offset
    if major == 1:
        return -1 - argument, offset
    if major in (2, 3):
        if offset + argument > len(data):
            raise CborError("truncated")
        chunk = data[offset : offset + argument]
        offset += argument
        if major == 2:
            return chunk, offset
        try:
            return chunk.decode("utf-8"), offset
        except UnicodeDecodeError:
            raise CborError("text is not UTF-8")
    if major == 4:
        if argument > len(data) - offset:
            raise CborError("truncated")
        items = []
        for _ in range(argument):
            item, offset = _decode(data, offset, depth + 1)
            items.append(item)
        return items, offset
    if major == 5:
        if argument > len(data) - offset:
            raise CborError("truncated")
        result = {}
        for _ in range(argument):
            key, offset = _decode(data, offset, depth + 1)
            if not isinstance(key, str) or key in result:
                raise CborError("map keys must be distinct text")
            result[key], offset = _decode(data, offset, depth + 1)
        return result, offset
    raise CborError("tags are not accepted")


class NsmError(Exception):
    """The NSM answered with an error code (InvalidArgument, InputTooLarge, InternalError...)."""


class NsmDevice:
    """The Nitro Security Module through /dev/nsm: one ioctl per request (needs Nitro hardware)."""

    REQUEST_MAX = 0x1000
    RESPONSE_MAX = 0x3000
    # _IOWR(0x0A, 0, struct nsm_message): two struct iovec, 32 bytes on 64-bit Linux.
    IOCTL_REQUEST = (3 << 30) | (32 << 16) | (0x0A << 8) | 0

    class _IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]

    class _Message(ctypes.Structure):
        pass

    _Message._fields_ = [("request", _IoVec), ("response", _IoVec)]

    def __init__(self, path="/dev/nsm"):
        self._fd = os.open(path, os.O_RDWR)
        self._lock = threading.Lock()

    def process(self, request):
        if len(request) > self.REQUEST_MAX:
            raise NsmError("InputTooLarge")
        request_buffer = ctypes.create_string_buffer(bytes(request), len(request))
        response_buffer = ctypes.create_string_buffer(self.RESPONSE_MAX)
        message = self._Message(
            self._IoVec(ctypes.addressof(request_buffer), len(request)),
            self._IoVec(ctypes.addressof(response_buffer), self.RESPONSE_MAX),
        )
        with self._lock:
            fcntl.ioctl(self._fd, self.IOCTL_REQUEST, message)
        return response_buffer.raw[: message.response.length]


class SocketNsm:
    """The same NSM messages sent to a stand-in over TCP, each length-prefixed (tests, the local stack)."""

    def __init__(self, host, port):
        self._address = (host, port)

    def process(self, request):
        with socket.create_connection(self._address, timeout=REQUEST_TIMEOUT_SECONDS) as connection:
            connection.sendall(struct.pack(">I", len(request)) + bytes(request))
            (length,) = struct.unpack(">I", _read_exactly(connection, 4))
            if length > NsmDevice.RESPONSE_MAX:
                raise NsmError("InvalidResponse")
            return _read_exactly(connection, length)


def attest(nsm, nonce, user_data=None, public_key=None):
    """The NSM's attestation document (COSE_Sign1 bytes) for these inputs; NsmError when it refuses."""
    request = cbor_encode(
        {"Attestation": {"user_data": user_data, "nonce": nonce, "public_key": public_key}}
    )
    try:
        response = cbor_decode(nsm.process(request))
    except CborError:
        raise NsmError("InvalidResponse")
    if isinstance(response, dict) and set(response) == {"Attestation"}:
        body = response["Attestation"]
        if isinstance(body, dict) and isinstance(body.get("document"), bytes) and body["document"]:
            return body["document"]
    if isinstance(response, dict) and set(response) == {"Error"} and isinstance(response["Error"], str):
        raise NsmError(response["Error"])
    raise NsmError("InvalidResponse")


class BadRequest(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def parse_request(body):
    """The request, checked as the protocol states: ("attest", fields) or ("metrics", None); BadRequest
    with the error code otherwise."""
    try:
        message = cbor_decode(body)
    except CborError as error:
        raise BadRequest("bad-request", "not one CBOR item: %s" % error)
    if not isinstance(message, dict):
        raise BadRequest("bad-request", "the request is not a CBOR map")
    if message.get("v") != PROTOCOL_VERSION or isinstance(message.get("v"), bool):
        raise BadRequest("unsupported-version", "this responder speaks protocol version 1")
    if "metrics" in message:
        if set(message) != {"v", "metrics"} or message["metrics"] is not True:
            raise BadRequest("bad-request", "a metrics request is exactly {v: 1, metrics: true}")
        return "metrics", None
    unknown = set(message) - {"v", "nonce", "userData", "publicKey"}
    if unknown:
        raise BadRequest("bad-request", "unknown fields: %s" % ", ".join(sorted(unknown)))
    fields = {}
    for name, bounds, required in (
        ("nonce", NONCE_BYTES, True),
        ("userData", USER_DATA_BYTES, False),
        ("publicKey", PUBLIC_KEY_BYTES, False),
    ):
        if name not in message:
            if required:
                raise BadRequest("bad-request", "%s is required" % name)
            continue
        value = message[name]
        if not isinstance(value, bytes) or not bounds[0] <= len(value) <= bounds[1]:
            raise BadRequest("bad-request", "%s must be %d..%d bytes" % (name, bounds[0], bounds[1]))
        fields[name] = value
    return "attest", fields


class RuntimeMetrics:
    """The enclave's own view of itself, from its kernel's /proc (the parent cannot see inside): CPU busy
    since the previous sample (since boot for the first), memory in use, uptime. Whole numbers only, as the
    protocol's CBOR has no floats: CPU in basis points (1/100 of a percent)."""

    def __init__(self, proc="/proc"):
        self._proc = proc
        self._previous = None
        self._lock = threading.Lock()

    def _read(self, name):
        with open(os.path.join(self._proc, name), "r", encoding="ascii") as handle:
            return handle.read()

    def sample(self):
        cpu = [int(field) for field in self._read("stat").splitlines()[0].split()[1:]]
        # user nice system idle iowait irq softirq steal (guest time is already in user): idle is idle+iowait.
        total, idle = sum(cpu[:8]), cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
        with self._lock:
            before = self._previous or (0, 0)
            self._previous = (total, idle)
        elapsed, rested = total - before[0], idle - before[1]
        busy = 0 if elapsed <= 0 else round(10000 * (elapsed - rested) / elapsed)
        memory = {}
        for line in self._read("meminfo").splitlines():
            key, _, value = line.partition(":")
            memory[key] = int(value.split()[0])
        used_kib = memory["MemTotal"] - memory.get("MemAvailable", memory.get("MemFree", 0))
        return {
            "cpuUtilizationBasisPoints": min(10000, max(0, busy)),
            "memoryUsedMiB": max(0, used_kib // 1024),
            "uptimeSeconds": int(float(self._read("uptime").split()[0])),
        }


def frame(message):
    body = cbor_encode(message)
    return struct.pack(">I", len(body)) + body


def error_frame(code, message):
    return frame({"v": PROTOCOL_VERSION, "error": {"code": code, "message": message}})


def _read_exactly(connection, count):
    chunks = []
    while count > 0:
        chunk = connection.recv(min(count, 65536))
        if not chunk:
            raise EOFError("the connection ended early")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def handle(connection, nsm, log, metrics=None):
    """One connection: one request, one answer, then close."""
    with connection:
        connection.settimeout(REQUEST_TIMEOUT_SECONDS)
        try:
            (length,) = struct.unpack(">I", _read_exactly(connection, 4))
            if length == 0 or length > MAX_REQUEST_FRAME:
                log("refused: a %d-byte request frame" % length)
                connection.sendall(error_frame("bad-request", "a request frame is 1..%d bytes" % MAX_REQUEST_FRAME))
                return
            kind, fields = parse_request(_read_exactly(connection, length))
        except BadRequest as refusal:
            log("refused: %s: %s" % (refusal.code, refusal))
            connection.sendall(error_frame(refusal.code, str(refusal)))
            return
        except (EOFError, socket.timeout, OSError) as error:
            log("dropped: %s" % (error or type(error).__name__))
            return
        if kind == "metrics":
            try:
                sample = (metrics or RuntimeMetrics()).sample()
            except (OSError, ValueError, KeyError, IndexError) as error:
                log("metrics unavailable: %s" % error)
                connection.sendall(error_frame("metrics-unavailable", "the enclave's /proc could not be read"))
                return
            connection.sendall(frame({"v": PROTOCOL_VERSION, "metrics": sample}))
            return
        try:
            document = attest(nsm, fields["nonce"], fields.get("userData"), fields.get("publicKey"))
        except NsmError as error:
            log("nsm error: %s" % error)
            connection.sendall(error_frame("nsm-error", "the NSM answered %s" % error))
            return
        except OSError as error:
            log("nsm unreachable: %s" % error)
            connection.sendall(error_frame("nsm-error", "the NSM could not be reached"))
            return
        log("attested: %d-byte nonce, %d-byte document" % (len(fields["nonce"]), len(document)))
        try:
            connection.sendall(frame({"v": PROTOCOL_VERSION, "document": document}))
        except OSError as error:
            log("dropped: %s" % error)


def listener(address):
    kind, _, rest = address.partition(":")
    if kind == "vsock":
        server = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        server.bind((socket.VMADDR_CID_ANY, int(rest)))
    elif kind == "tcp":
        host, _, port = rest.rpartition(":")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, int(port)))
    else:
        raise SystemExit("--listen takes vsock:PORT or tcp:HOST:PORT, not %r" % address)
    server.listen(16)
    return server


def nsm_of(address):
    if address.startswith("tcp:"):
        host, _, port = address[4:].rpartition(":")
        return SocketNsm(host, int(port))
    return NsmDevice(address)


def serve(server, nsm, log):
    slots = threading.BoundedSemaphore(MAX_CONCURRENT)
    metrics = RuntimeMetrics()

    def run(connection):
        try:
            handle(connection, nsm, log, metrics)
        finally:
            slots.release()

    while True:
        slots.acquire()
        connection, _ = server.accept()
        threading.Thread(target=run, args=(connection,), daemon=True).start()


# ------------------------------------------------------------------------------------------- key release
#
# The step an enclave workload takes to read its datasets (README, "Contract keys"): the provider encrypted
# them under data keys wrapped by the contract's KMS key, and the key's policy releases a data key only to an
# enclave whose attestation document shows an approved image on the parent of a Running enclave. So:
#   1. make an RSA-2048 key pair here, inside the enclave (the private key never leaves this process);
#   2. ask the NSM for an attestation document carrying the public key;
#   3. call KMS `Decrypt` with the wrapped key, its encryption context and `Recipient` (the document,
#      RSAES_OAEP_SHA_256), signed (SigV4) with the parent's role credentials, which the parent hands in:
#      they are worthless without a document from an approved enclave, as the key policy admits the role
#      only with one;
#   4. open KMS's answer, `CiphertextForRecipient` (CMS EnvelopedData, RFC 5652: the content key wrapped with
#      RSAES-OAEP-SHA-256 and MGF1-SHA-256 for this key pair, the plaintext under AES-256-CBC), with the
#      private key.
# The enclave has no network: it reaches KMS over vsock (CID 3, the parent, port 8000), where the parent's
# vsock-proxy forwards to the region's KMS endpoint only, and TLS runs end to end from here to KMS, checked
# against the image's CA bundle for kms.<region>.amazonaws.com. All of it is the standard library: RSA from
# Python's integers (probable primes by Miller-Rabin, CRT with blinding), AES from FIPS 197, a BER reader.
# Python cannot erase memory; the key pair lives as long as the call, and the data key is the caller's.

KMS_VSOCK = "vsock:3:8000"
KMS_TIMEOUT_SECONDS = 10.0
MAX_KMS_RESPONSE_BYTES = 65536
MAX_ENVELOPE_BYTES = 16384


class KeyReleaseError(Exception):
    """The data key was not released: KMS refused (`kms_error` is its error type), or the call could not be
    made or its answer not opened (`kms_error` is None)."""

    def __init__(self, message, kms_error=None):
        super().__init__(message)
        self.kms_error = kms_error


class EnvelopeError(KeyReleaseError):
    """`CiphertextForRecipient` is not the CMS KMS writes, names another key, or does not open."""


# RSA --------------------------------------------------------------------------------------------------

_SMALL_PRIMES = [n for n in range(3, 2000, 2) if all(n % d for d in range(3, int(n**0.5) + 1, 2))]


def _probably_prime(candidate, rounds=40):
    """Miller-Rabin with random bases after trial division (error below 4^-40 for a composite)."""
    for small in _SMALL_PRIMES:
        if candidate % small == 0:
            return candidate == small
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(2 + secrets.randbelow(candidate - 3), d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, candidate)
            if x == candidate - 1:
                break
        else:
            return False
    return True


def _random_prime(bits, exponent):
    while True:
        # The two top bits set, so that two such primes make a modulus of exactly 2 * bits bits.
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if math.gcd(exponent, candidate - 1) == 1 and _probably_prime(candidate):
            return candidate


def _der(tag, content):
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def _der_integer(value):
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


_RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d0101010500")  # OID 1.2.840.113549.1.1.1, NULL


class RsaKeyPair:
    """An RSA private key (e = 65537) and what the enclave needs of it: the public key the attestation
    document carries, its subject key identifier (how KMS's envelope names it) and RSAES-OAEP decryption."""

    def __init__(self, n, e, d, p, q):
        if p * q != n or pow(pow(2, e, n), d, n) != 2:
            raise ValueError("not an RSA key")
        self.n, self.e, self.d, self.p, self.q = n, e, d, p, q
        self._dp, self._dq, self._q_inverse = d % (p - 1), d % (q - 1), pow(q, -1, p)
        self.size = (n.bit_length() + 7) // 8
        # RSAPublicKey, the subjectPublicKey of the SubjectPublicKeyInfo below.
        self._public_bits = _der(0x30, _der_integer(n) + _der_integer(e))

    @classmethod
    def generate(cls, bits=2048, e=65537):
        while True:
            p, q = _random_prime(bits // 2, e), _random_prime(bits // 2, e)
            # FIPS 186-4 B.3.1: p and q far apart, d above 2^(bits/2).
            if abs(p - q) >> (bits // 2 - 100) == 0:
                continue
            d = pow(e, -1, (p - 1) * (q - 1) // math.gcd(p - 1, q - 1))
            if d.bit_length() > bits // 2:
                return cls(p * q, e, d, p, q)

    def public_key_der(self):
        """The public key as a DER SubjectPublicKeyInfo, the form an attestation document's public_key takes."""
        return _der(0x30, _der(0x30, _RSA_ENCRYPTION) + _der(0x03, b"\x00" + self._public_bits))

    def subject_key_identifier(self):
        """RFC 5280 4.2.1.2, method 1: SHA-1 of the subjectPublicKey bits."""
        return hashlib.sha1(self._public_bits).digest()

    def _decrypt_integer(self, c):
        # Blinded (the time taken does not follow c) and checked (a fault does not leak a factor).
        while True:
            r = secrets.randbelow(self.n - 2) + 2
            if math.gcd(r, self.n) == 1:
                break
        blinded = c * pow(r, self.e, self.n) % self.n
        m1, m2 = pow(blinded, self._dp, self.p), pow(blinded, self._dq, self.q)
        m = m2 + self.q * ((m1 - m2) * self._q_inverse % self.p)
        if pow(m, self.e, self.n) != blinded:
            raise EnvelopeError("the RSA computation failed its check")
        return m * pow(r, -1, self.n) % self.n

    def decrypt_oaep_sha256(self, ciphertext):
        """RSAES-OAEP-DECRYPT (RFC 8017 7.1.2) with SHA-256, MGF1-SHA-256 and the empty label. Every way it
        can fail gives the same error, after the same steps."""
        refused = EnvelopeError("the content key does not unwrap with this private key")
        h = hashlib.sha256
        h_len = h().digest_size
        if len(ciphertext) != self.size or self.size < 2 * h_len + 2:
            raise refused
        c = int.from_bytes(ciphertext, "big")
        if c >= self.n:
            raise refused
        encoded = self._decrypt_integer(c).to_bytes(self.size, "big")
        masked_seed, masked_db = encoded[1 : 1 + h_len], encoded[1 + h_len :]
        seed = _xor(masked_seed, _mgf1_sha256(masked_db, h_len))
        db = _xor(masked_db, _mgf1_sha256(seed, len(masked_db)))
        # Find the 0x01 after the zero padding without leaving the loop early.
        good = hmac.compare_digest(db[:h_len], h(b"").digest()) & (encoded[0] == 0)
        separator, looking = 0, True
        for index in range(h_len, len(db)):
            byte = db[index]
            found = looking and byte == 1
            good &= not (looking and byte not in (0, 1))
            separator = index if found else separator
            looking = looking and not found
        if not good or looking:
            raise refused
        return db[separator + 1 :]


def _xor(left, right):
    return bytes(a ^ b for a, b in zip(left, right))


def _mgf1_sha256(seed, length):
    out = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range((length + 31) // 32))
    return out[:length]


# AES-256, decryption (FIPS 197) -------------------------------------------------------------------------


def _aes_tables():
    def times(a, b):
        product = 0
        while b:
            if b & 1:
                product ^= a
            a = (a << 1) ^ (0x11B if a & 0x80 else 0)
            b >>= 1
        return product

    sbox = [0] * 256
    for value in range(256):
        inverse = next((x for x in range(1, 256) if times(value, x) == 1), 0)
        s = inverse
        for shift in range(1, 5):
            s ^= ((inverse << shift) | (inverse >> (8 - shift))) & 0xFF
        sbox[value] = s ^ 0x63
    inverse_sbox = [0] * 256
    for value, substituted in enumerate(sbox):
        inverse_sbox[substituted] = value
    multiply = {k: [times(v, k) for v in range(256)] for k in (9, 11, 13, 14)}
    return sbox, inverse_sbox, multiply


_AES_TABLES = None


def _aes256_round_keys(key):
    """The 15 round keys of an AES-256 key (FIPS 197 5.2), each 16 bytes in state order."""
    sbox = _AES_TABLES[0]
    words = [list(key[i : i + 4]) for i in range(0, 32, 4)]
    rcon = 1
    for i in range(8, 60):
        temp = list(words[i - 1])
        if i % 8 == 0:
            temp = [sbox[b] for b in temp[1:] + temp[:1]]
            temp[0] ^= rcon
            rcon = (rcon << 1) ^ (0x11B if rcon & 0x80 else 0)
        elif i % 8 == 4:
            temp = [sbox[b] for b in temp]
        words.append([a ^ b for a, b in zip(words[i - 8], temp)])
    return [sum(words[4 * r : 4 * r + 4], []) for r in range(15)]


def _aes256_decrypt_block(round_keys, block):
    """The inverse cipher (FIPS 197 5.3) on one 16-byte block; the state is column-major, as the input."""
    _, inverse_sbox, m = _AES_TABLES
    state = [b ^ k for b, k in zip(block, round_keys[14])]
    for round_number in range(13, -1, -1):
        # InvShiftRows (row r rotates right by r), InvSubBytes, AddRoundKey.
        state = [inverse_sbox[state[r + 4 * ((c - r) % 4)]] for c in range(4) for r in range(4)]
        state = [b ^ k for b, k in zip(state, round_keys[round_number])]
        if round_number == 0:
            return bytes(state)
        mixed = []
        for c in range(4):
            a0, a1, a2, a3 = state[4 * c : 4 * c + 4]
            mixed += [
                m[14][a0] ^ m[11][a1] ^ m[13][a2] ^ m[9][a3],
                m[9][a0] ^ m[14][a1] ^ m[11][a2] ^ m[13][a3],
                m[13][a0] ^ m[9][a1] ^ m[14][a2] ^ m[11][a3],
                m[11][a0] ^ m[13][a1] ^ m[9][a2] ^ m[14][a3],
            ]
        state = mixed


def aes256_cbc_decrypt(key, iv, ciphertext):
    """AES-256-CBC decryption with PKCS#7 padding removed; EnvelopeError when the sizes or padding are wrong."""
    global _AES_TABLES
    if len(key) != 32 or len(iv) != 16:
        raise EnvelopeError("AES-256-CBC takes a 32-byte key and a 16-byte IV")
    if not ciphertext or len(ciphertext) % 16:
        raise EnvelopeError("the encrypted content is not a whole number of AES blocks")
    if _AES_TABLES is None:
        _AES_TABLES = _aes_tables()
    round_keys = _aes256_round_keys(key)
    previous, out = bytes(iv), bytearray()
    for at in range(0, len(ciphertext), 16):
        block = bytes(ciphertext[at : at + 16])
        out += _xor(_aes256_decrypt_block(round_keys, block), previous)
        previous = block
    pad = out[-1]
    if not 1 <= pad <= 16 or out[-pad:] != bytes([pad]) * pad:
        raise EnvelopeError("the content does not decrypt with the unwrapped key")
    return bytes(out[:-pad])


# CMS EnvelopedData, as KMS writes CiphertextForRecipient ---------------------------------------------------

_OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
_OID_DATA = "1.2.840.113549.1.7.1"
_OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
_OID_MGF1 = "1.2.840.113549.1.1.8"
_OID_SHA256 = "2.16.840.1.101.3.4.2.1"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_MAX_BER_DEPTH = 8


class _Element:
    __slots__ = ("tag", "constructed", "start", "end", "next")

    def __init__(self, tag, constructed, start, end, after):
        self.tag, self.constructed, self.start, self.end, self.next = tag, constructed, start, end, after


def _ber_element(data, at, limit, depth):
    """One BER element (definite or indefinite length) within data[at:limit], bounded by its parent."""
    if depth > _MAX_BER_DEPTH:
        raise EnvelopeError("the envelope nests deeper than CMS does")
    if at + 2 > limit:
        raise EnvelopeError("the envelope ends inside an element header")
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise EnvelopeError("the envelope uses a multi-byte tag, which CMS does not")
    constructed = bool(tag & 0x20)
    first, start = data[at + 1], at + 2
    if first == 0x80:
        if not constructed:
            raise EnvelopeError("a primitive element has an indefinite length")
        cursor = start
        while True:
            if cursor + 2 > limit:
                raise EnvelopeError("an indefinite-length element is not terminated")
            if data[cursor] == 0 and data[cursor + 1] == 0:
                return _Element(tag, constructed, start, cursor, cursor + 2)
            cursor = _ber_element(data, cursor, limit, depth + 1).next
    length = first
    if first & 0x80:
        count = first & 0x7F
        if not 1 <= count <= 3:
            raise EnvelopeError("an element length is not one to three bytes long")
        if start + count > limit:
            raise EnvelopeError("the envelope ends inside an element length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > limit:
        raise EnvelopeError("an element is longer than what holds it")
    return _Element(tag, constructed, start, start + length, start + length)


def _ber_children(data, parent, depth):
    if not parent.constructed:
        raise EnvelopeError("a structure is encoded as a primitive element")
    children, at = [], parent.start
    while at < parent.end:
        child = _ber_element(data, at, parent.end, depth + 1)
        children.append(child)
        at = child.next
    return children


def _expect(element, tag, what):
    if element is None or element.tag != tag:
        raise EnvelopeError("the envelope has no %s where CMS puts it" % what)
    return element


def _oid(data, element, what):
    element = _expect(element, 0x06, what)
    content = data[element.start : element.end]
    if not content or content[-1] & 0x80:
        raise EnvelopeError("the %s is not an object identifier" % what)
    first = min(2, content[0] // 40)
    arcs, value = [first, content[0] - 40 * first], 0
    for byte in content[1:]:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(arc) for arc in arcs)


def _small_integer(data, element, what):
    element = _expect(element, 0x02, what)
    if element.end - element.start != 1:
        raise EnvelopeError("the %s is not a small integer" % what)
    return data[element.start]


def _octets(data, element, depth):
    """An OCTET STRING's content, primitive or in constructed segments (BER)."""
    if not element.constructed:
        return data[element.start : element.end]
    segments = []
    for segment in _ber_children(data, element, depth):
        if segment.tag != 0x04:
            raise EnvelopeError("a segmented octet string holds something else")
        segments.append(_octets(data, segment, depth + 1))
    return b"".join(segments)


def _is_sha256(data, algorithm):
    if algorithm is None or algorithm.tag != 0x30:
        return False
    children = _ber_children(data, algorithm, 0)
    if not 1 <= len(children) <= 2 or _oid(data, children[0], "hash algorithm") != _OID_SHA256:
        return False
    return len(children) == 1 or (children[1].tag == 0x05 and children[1].end == children[1].start)


def _check_oaep_sha256(data, algorithm):
    refused = EnvelopeError("the content key is not wrapped with RSAES-OAEP, SHA-256 and MGF1-SHA-256")
    children = _ber_children(data, _expect(algorithm, 0x30, "key encryption algorithm"), 0)
    if len(children) != 2 or _oid(data, children[0], "key encryption algorithm") != _OID_RSAES_OAEP:
        raise refused
    explicit = {}
    for field in _ber_children(data, _expect(children[1], 0x30, "RSAES-OAEP parameters"), 1):
        # hashFunc [0] and maskGenFunc [1], each once; pSourceFunc ([2]) or anything else is refused: KMS
        # leaves the label at its default.
        inner = _ber_children(data, field, 2) if field.tag in (0xA0, 0xA1) else []
        if field.tag in explicit or len(inner) != 1:
            raise refused
        explicit[field.tag] = inner[0]
    hash_algorithm, mask = explicit.get(0xA0), explicit.get(0xA1)
    if not _is_sha256(data, hash_algorithm):
        raise refused
    mask_fields = _ber_children(data, _expect(mask, 0x30, "mask generation function"), 3)
    if len(mask_fields) != 2 or _oid(data, mask_fields[0], "mask generation function") != _OID_MGF1:
        raise refused
    if not _is_sha256(data, mask_fields[1]):
        raise refused


def open_for_recipient(envelope, key_pair):
    """The plaintext of `CiphertextForRecipient`, opened with the private key of the attestation document;
    EnvelopeError when it is not the CMS KMS writes, names another key, or does not open."""
    data = bytes(envelope)
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("the envelope is larger than %d bytes" % MAX_ENVELOPE_BYTES)
    content_info = _expect(_ber_element(data, 0, len(data), 0), 0x30, "ContentInfo")
    if content_info.next != len(data):
        raise EnvelopeError("the envelope has bytes after its ContentInfo")
    children = _ber_children(data, content_info, 0) + [None, None]
    if _oid(data, children[0], "content type") != _OID_ENVELOPED_DATA:
        raise EnvelopeError("the envelope is not EnvelopedData")
    inner = _ber_children(data, _expect(children[1], 0xA0, "content"), 1)
    if len(inner) != 1:
        raise EnvelopeError("the envelope holds more than one content")
    fields = _ber_children(data, _expect(inner[0], 0x30, "EnvelopedData"), 2) + [None, None, None]
    if _small_integer(data, fields[0], "EnvelopedData version") != 2:
        raise EnvelopeError("the EnvelopedData is not version 2")
    index = 2 if fields[1] is not None and fields[1].tag == 0xA0 else 1  # originatorInfo, unused by KMS
    recipients = _ber_children(data, _expect(fields[index], 0x31, "RecipientInfos"), 3)
    content = _expect(fields[index + 1], 0x30, "EncryptedContentInfo")
    if len(recipients) != 1:
        raise EnvelopeError("the envelope has %d recipients, not one" % len(recipients))
    recipient = _ber_children(data, _expect(recipients[0], 0x30, "KeyTransRecipientInfo"), 4)
    if len(recipient) != 4 or _small_integer(data, recipient[0], "recipient version") != 2:
        raise EnvelopeError("the recipient is not a version 2 KeyTransRecipientInfo")
    rid = _expect(recipient[1], 0x80, "subjectKeyIdentifier")
    if not hmac.compare_digest(data[rid.start : rid.end], key_pair.subject_key_identifier()):
        raise EnvelopeError("the envelope is for another key")
    _check_oaep_sha256(data, recipient[2])
    wrapped = _expect(recipient[3], 0x04, "encrypted key")

    content_fields = _ber_children(data, content, 3) + [None, None, None]
    if _oid(data, content_fields[0], "encrypted content type") != _OID_DATA:
        raise EnvelopeError("the encrypted content is not data")
    algorithm = _ber_children(data, _expect(content_fields[1], 0x30, "content encryption algorithm"), 4)
    if _oid(data, (algorithm + [None])[0], "content encryption algorithm") != _OID_AES256_CBC:
        raise EnvelopeError("the content is not encrypted with AES-256-CBC")
    iv_element = _expect((algorithm + [None, None])[1], 0x04, "IV")
    iv = data[iv_element.start : iv_element.end]
    if len(iv) != 16:
        raise EnvelopeError("the IV is not 16 bytes")
    encrypted = content_fields[2]
    if encrypted is None or encrypted.tag not in (0x80, 0xA0):
        raise EnvelopeError("the envelope carries no encrypted content")
    ciphertext = _octets(data, encrypted, 4)
    content_key = key_pair.decrypt_oaep_sha256(data[wrapped.start : wrapped.end])
    if len(content_key) != 32:
        raise EnvelopeError("the content key is not an AES-256 key")
    return aes256_cbc_decrypt(content_key, iv, ciphertext)


# KMS over vsock -----------------------------------------------------------------------------------------


def sigv4_headers(method, host, path, body, region, service, credentials, headers, now=None):
    """`headers` plus Host, X-Amz-Date, the session token and the Authorization of AWS Signature Version 4
    (empty query string, the body's SHA-256 as the payload hash)."""
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    signed = {key.lower(): " ".join(str(value).split()) for key, value in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = stamp
    if credentials.get("sessionToken"):
        signed["x-amz-security-token"] = credentials["sessionToken"]
    names = sorted(signed)
    canonical = "\n".join(
        [method, path, "", "".join("%s:%s\n" % (name, signed[name]) for name in names), ";".join(names)]
        + [hashlib.sha256(body).hexdigest()]
    )
    scope = "%s/%s/%s/aws4_request" % (stamp[:8], region, service)
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = ("AWS4" + credentials["secretAccessKey"]).encode("utf-8")
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        credentials["accessKeyId"],
        scope,
        ";".join(names),
        signature,
    )
    return signed


class KmsEndpoint:
    """Where KMS answers: `vsock:CID:PORT` (in the enclave: the parent's vsock-proxy, with TLS to
    kms.<region>.amazonaws.com through it), `https://HOST[:PORT]` or `http://HOST:PORT` (a stand-in)."""

    def __init__(self, spec, region):
        self.region = region
        if spec.startswith("vsock:"):
            cid, _, port = spec[len("vsock:") :].partition(":")
            if not (cid.isdigit() and port.isdigit()):
                raise ValueError("--kms vsock:CID:PORT takes two numbers, not %r" % spec)
            self._connect = lambda: _vsock_connection(int(cid), int(port))
            # Through the proxy, TLS and the signature name KMS's own endpoint.
            suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
            self.host = self._tls_name = "kms.%s.%s" % (region, suffix)
            self.tls = True
            return
        parts = urllib.parse.urlsplit(spec)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("--kms takes vsock:CID:PORT, https://HOST[:PORT] or http://HOST:PORT, not %r" % spec)
        address = (parts.hostname, port or (443 if parts.scheme == "https" else 80))
        self._connect = lambda: socket.create_connection(address, timeout=KMS_TIMEOUT_SECONDS)
        self.host, self._tls_name, self.tls = parts.netloc, parts.hostname, parts.scheme == "https"

    def connection(self):
        connection = self._connect()
        connection.settimeout(KMS_TIMEOUT_SECONDS)
        if self.tls:
            connection = ssl.create_default_context().wrap_socket(connection, server_hostname=self._tls_name)
        return connection


def _vsock_connection(cid, port):
    connection = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    connection.settimeout(KMS_TIMEOUT_SECONDS)
    connection.connect((cid, port))
    return connection


class _KmsHttpConnection(http.client.HTTPConnection):
    def __init__(self, endpoint):
        super().__init__(endpoint.host, timeout=KMS_TIMEOUT_SECONDS)
        self._endpoint = endpoint

    def connect(self):
        self.sock = self._endpoint.connection()


def kms_call(endpoint, credentials, operation, request):
    """One call of KMS's JSON 1.1 protocol: the answer's JSON; KeyReleaseError with KMS's error type when it
    refuses, without one when it cannot be reached or answers something else."""
    body = json.dumps(request, separators=(",", ":")).encode("utf-8")
    headers = sigv4_headers(
        "POST",
        endpoint.host,
        "/",
        body,
        endpoint.region,
        "kms",
        credentials,
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.%s" % operation},
    )
    connection = _KmsHttpConnection(endpoint)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(MAX_KMS_RESPONSE_BYTES + 1)
    except (OSError, http.client.HTTPException) as error:
        raise KeyReleaseError("KMS could not be reached at %s: %s" % (endpoint.host, error or type(error).__name__))
    finally:
        connection.close()
    if len(answer) > MAX_KMS_RESPONSE_BYTES:
        raise KeyReleaseError("KMS answered more than %d bytes" % MAX_KMS_RESPONSE_BYTES)
    try:
        parsed = json.loads(answer.decode("utf-8")) if answer else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise KeyReleaseError("KMS answered HTTP %d without a JSON object" % response.status)
    if response.status != 200:
        kind = str(parsed.get("__type") or response.getheader("x-amzn-ErrorType") or "HTTP %d" % response.status)
        kind = kind.rpartition("#")[2].partition(":")[0]
        message = parsed.get("message") or parsed.get("Message") or ""
        raise KeyReleaseError("KMS refused: %s%s" % (kind, ": %s" % message if message else ""), kind)
    return parsed


def release_data_key(nsm, endpoint, credentials, ciphertext_blob, encryption_context, key_id=None, key_pair=None):
    """The plaintext of a data key wrapped under a contract's KMS key, released to this enclave by KMS against
    its attestation document (the steps above); KeyReleaseError when it is not."""
    key_pair = key_pair or RsaKeyPair.generate()
    try:
        document = attest(nsm, None, None, key_pair.public_key_der())
    except NsmError as error:
        raise KeyReleaseError("the NSM answered %s" % error)
    except (OSError, EOFError) as error:
        raise KeyReleaseError("the NSM could not be reached: %s" % (error or type(error).__name__))
    request = {
        "CiphertextBlob": ciphertext_blob,
        "EncryptionContext": encryption_context,
        "Recipient": {
            "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            "AttestationDocument": base64.b64encode(document).decode("ascii"),
        },
    }
    if key_id:
        request["KeyId"] = key_id
    answer = kms_call(endpoint, credentials, "Decrypt", request)
    if "Plaintext" in answer:
        # An attested call is answered for the recipient only; a plaintext crossed the parent in the clear.
        raise KeyReleaseError("KMS answered in plaintext, not for this enclave's key")
    try:
        envelope = base64.b64decode(answer.get("CiphertextForRecipient") or "", validate=True)
    except (ValueError, TypeError):
        raise EnvelopeError("CiphertextForRecipient is not base64")
    return open_for_recipient(envelope, key_pair)


def read_wrapped_data_key(text):
    """(ciphertextBlob, encryptionContext, keyArn) from the answer of POST /contracts/{id}/data-keys."""
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    blob, context, key_arn = parsed.get("ciphertextBlob"), parsed.get("encryptionContext"), parsed.get("keyArn")
    if not isinstance(blob, str) or not blob:
        raise ValueError("no ciphertextBlob")
    if not isinstance(context, dict) or not isinstance(context.get("contractId"), str):
        raise ValueError("no encryptionContext.contractId")
    if not all(isinstance(value, str) for value in context.values()):
        raise ValueError("the encryptionContext's values are not strings")
    if key_arn is not None and not isinstance(key_arn, str):
        raise ValueError("keyArn is not a string")
    return blob, context, key_arn


def decrypt_main(argv):
    """`decrypt`: prints the released data key (base64) and answers 0; 1 when it is not released (KMS's
    refusal on stderr); 2 on a usage error."""
    parser = argparse.ArgumentParser(
        prog="attestation_responder.py decrypt",
        description="Releases a data key to this enclave: the answer of POST /contracts/{id}/data-keys in, "
        "the plaintext data key (base64) out. The parent's role credentials come in AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.",
    )
    parser.add_argument("--in", dest="source", required=True, help="the wrapped data key's JSON file, or -")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    parser.add_argument("--kms", default=KMS_VSOCK)
    parser.add_argument("--nsm", default="/dev/nsm")
    args = parser.parse_args(argv)

    def fail(code, message):
        print("attestation-responder: %s" % message, file=sys.stderr, flush=True)
        return code

    if not args.region:
        return fail(2, "the region is --region or AWS_REGION")
    credentials = {
        "accessKeyId": os.environ.get("AWS_ACCESS_KEY_ID"),
        "secretAccessKey": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "sessionToken": os.environ.get("AWS_SESSION_TOKEN"),
    }
    if not credentials["accessKeyId"] or not credentials["secretAccessKey"]:
        return fail(2, "the parent's credentials are AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    try:
        endpoint = KmsEndpoint(args.kms, args.region)
    except ValueError as error:
        return fail(2, str(error))
    try:
        if args.source == "-":
            text = sys.stdin.read(MAX_KMS_RESPONSE_BYTES)
        else:
            with open(args.source, "r", encoding="utf-8") as handle:
                text = handle.read(MAX_KMS_RESPONSE_BYTES)
        blob, context, key_arn = read_wrapped_data_key(text)
    except (OSError, ValueError) as error:
        return fail(2, "%s is not the answer of POST /contracts/{id}/data-keys (%s)" % (args.source, error))
    try:
        nsm = nsm_of(args.nsm)
    except OSError as error:
        return fail(1, "the NSM %s cannot be opened: %s" % (args.nsm, error))
    try:
        key = release_data_key(nsm, endpoint, credentials, blob, context, key_arn)
    except KeyReleaseError as error:
        return fail(1, str(error))
    sys.stdout.write(base64.b64encode(key).decode("ascii") + "\n")
    sys.stdout.flush()
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["decrypt"]:
        return decrypt_main(argv[1:])
    parser = argparse.ArgumentParser(description="Answers the enclave attestation protocol (version 1).")
    parser.add_argument("--listen", default="vsock:%d" % ATTESTATION_PORT)
    parser.add_argument("--nsm", default="/dev/nsm")
    args = parser.parse_args(argv)
    nsm = nsm_of(args.nsm)
    server = listener(args.listen)

    def log(line):
        print("attestation-responder: %s" % line, file=sys.stderr, flush=True)

    bound = server.getsockname()
    log("listening on %s (protocol %d)" % (":".join(str(part) for part in bound), PROTOCOL_VERSION))
    try:
        serve(server, nsm, log)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
