#!/usr/bin/env python3
"""The reference responder of the enclave attestation protocol, version 1 (README: "Enclave attestation
protocol"). It runs inside the enclave, listens on vsock port 5005 and answers each request with an attestation
document from the Nitro Security Module (NSM), binding the parent agent's nonce (and the optional user data
and public key) into it, or, asked `{v: 1, metrics: true}`, with the enclave's runtime metrics read from its
own /proc (CPU busy since the last sample, memory in use, uptime), which the parent cannot see from outside.

Why Python: an enclave image is any Docker image, and Python's standard library alone reaches everything the
responder needs, with nothing to compile or to install from a package index: AF_VSOCK sockets (the `socket`
module, Linux), and the NSM's ioctl on /dev/nsm (`fcntl` and `ctypes`). Its CBOR is the few lines below, a
strict subset: definite lengths, no tags, no floats. Add this file to a workload image and start it beside the
workload (e.g. `CMD python3 /opt/attestation_responder.py & exec <workload>`).

The NSM call is one seam, `Nsm.process(request_bytes) -> response_bytes` (the NSM's own CBOR messages):
`NsmDevice` does the ioctl on /dev/nsm, as aws-nitro-enclaves-nsm-api's driver does (the request and a 12 KiB
response buffer as two iovecs, request code _IOWR(0x0A, 0, 32)); `SocketNsm` sends the same bytes to a stand-in
(the repository's tests and local stack answer them with the Nitro simulator). Only `NsmDevice` needs Nitro
hardware; everything else is tested here.

Usage: attestation_responder.py [--listen vsock:5005 | tcp:HOST:PORT] [--nsm /dev/nsm | tcp:HOST:PORT]
"""

import argparse
import ctypes
import fcntl
import os
import socket
import struct
import sys
import threading

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


def main(argv=None):
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
