/**
 * The enclave attestation protocol end to end, on every piece but the hardware: the parent agent's client
 * (infra/parent-agent/attestation-client.ts) asks the reference responder (the Python program an enclave
 * image runs, started here as a process listening on TCP instead of vsock), which asks the NSM through its
 * socket seam, answered by the Nitro simulator; the document that comes back verifies with the platform's
 * verifier, the agent's nonce (and user data and public key) bound in it. Then each way a request or an
 * answer can be wrong, from both ends: what the responder refuses (and with which code), and what the
 * client refuses (frames too large, malformed answers, silence, a closed port).
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect as connectTcp, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { PassThrough } from 'node:stream';
import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  RESPONDER_SCRIPT,
  startResponder,
} from '../../infra/local/services/nitro-enclaves/nitro-cli-simulator.ts';
import {
  LOCAL_DEFAULT_IMAGE,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import {
  type NsmEndpoint,
  type NsmErrorCode,
  startNsmEndpoint,
} from '../../infra/local/services/nitro-enclaves/nsm-endpoint.ts';
import {
  ResponderRefusal,
  ResponderTimeout,
  requestAttestation,
  requestMetrics,
  tcpConnector,
} from '../../infra/parent-agent/attestation-client.ts';
import {
  decodeAnswer,
  encodeFrame,
  encodeRequest,
  MAX_REQUEST_FRAME,
  MAX_RESPONSE_FRAME,
  ProtocolError,
  readFrame,
} from '../../infra/parent-agent/attestation-protocol.ts';
import { buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';

const INSTANCE = 'i-0123456789abcdef0';
const plain = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, pack: false });

let simulator: NitroSimulator;
let nsm: NsmEndpoint;
let responder: ChildProcess;
let port: number;
/** The NSM's next answers instead of a document. */
const nsmErrors: NsmErrorCode[] = [];

beforeAll(async () => {
  simulator = await NitroSimulator.create();
  nsm = await startNsmEndpoint(async (input) => {
    const error = nsmErrors.shift();
    if (error) return { error };
    return simulator.attest({ instanceId: INSTANCE, image: LOCAL_DEFAULT_IMAGE, ...input });
  });
  ({ child: responder, port } = await startResponder(nsm.port));
});
afterAll(async () => {
  responder?.kill();
  await nsm?.close();
});
beforeEach(() => {
  nsm.requests.length = 0;
  nsmErrors.length = 0;
});

const expectedPcrs = () => simulator.expectedPcrs({ instanceId: INSTANCE, image: LOCAL_DEFAULT_IMAGE });
const connect = () => tcpConnector('127.0.0.1', port);

/** Sends raw bytes to the responder and reads its one answer (a frame), as a hostile client would. */
async function raw(
  bytes: Uint8Array,
  options: { end?: boolean } = {},
): Promise<ReturnType<typeof decodeAnswer>> {
  const socket = connectTcp({ host: '127.0.0.1', port });
  socket.write(bytes);
  if (options.end) socket.end();
  try {
    return decodeAnswer(await readFrame(socket, MAX_RESPONSE_FRAME));
  } finally {
    socket.destroy();
  }
}

function rawFrame(message: unknown): Buffer {
  const body = plain.encode(message);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** A frame around a CBOR body given in hex. */
function hexFrame(hex: string): Buffer {
  const body = Buffer.from(hex, 'hex');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

describe('the agent asks the reference responder', () => {
  it('for a document that binds its nonce, user data and public key, and verifies', async () => {
    const nonce = randomBytes(32);
    const userData = Buffer.from('{"enclaveId":"e-1"}');
    const publicKey = randomBytes(91);
    const document = await requestAttestation(
      connect(),
      { nonce, userData, publicKey },
      { timeoutMs: 10_000 },
    );
    const result = verifyAttestation(
      document,
      buildPolicy({
        measurements: [expectedPcrs()],
        expectedNonce: nonce,
        requireFreshness: true,
        expectedUserData: userData,
        expectedPublicKey: publicKey,
        maxAgeMs: 60_000,
      }),
      { at: new Date(), trustedRoots: [simulator.rootPem] },
    );
    expect(result.ok).toBe(true);
    // The NSM was asked exactly that.
    expect(nsm.requests).toEqual([
      {
        nonce: new Uint8Array(nonce),
        userData: new Uint8Array(userData),
        publicKey: new Uint8Array(publicKey),
      },
    ]);
  });

  it('with the nonce alone: user data and public key stay absent (null in the NSM request)', async () => {
    const nonce = randomBytes(16);
    const document = await requestAttestation(connect(), { nonce }, { timeoutMs: 10_000 });
    const result = verifyAttestation(
      document,
      buildPolicy({ measurements: [expectedPcrs()], expectedNonce: nonce, requireFreshness: true }),
      { at: new Date(), trustedRoots: [simulator.rootPem] },
    );
    expect(result.ok).toBe(true);
    if (result.ok) expect([result.claims.userData, result.claims.publicKey]).toEqual([null, null]);
    expect(nsm.requests).toEqual([{ nonce: new Uint8Array(nonce) }]);
  });

  it('serves several agents at once', async () => {
    const nonces = Array.from({ length: 6 }, () => randomBytes(32));
    const documents = await Promise.all(
      nonces.map((nonce) => requestAttestation(connect(), { nonce }, { timeoutMs: 10_000 })),
    );
    documents.forEach((document, i) => {
      const result = verifyAttestation(
        document,
        buildPolicy({ measurements: [expectedPcrs()], expectedNonce: nonces[i]!, requireFreshness: true }),
        { at: new Date(), trustedRoots: [simulator.rootPem] },
      );
      expect(result.ok).toBe(true);
    });
  });

  it("for the enclave's runtime metrics, read from its /proc, asking the NSM nothing", async () => {
    const first = await requestMetrics(connect(), { timeoutMs: 10_000 });
    const second = await requestMetrics(connect(), { timeoutMs: 10_000 });
    for (const sample of [first, second]) {
      expect(Object.keys(sample).sort()).toEqual([
        'cpuUtilizationBasisPoints',
        'memoryUsedMiB',
        'uptimeSeconds',
      ]);
      expect(sample.cpuUtilizationBasisPoints).toBeGreaterThanOrEqual(0);
      expect(sample.cpuUtilizationBasisPoints).toBeLessThanOrEqual(10_000);
      expect(Number.isInteger(sample.cpuUtilizationBasisPoints)).toBe(true);
    }
    // Memory in use and uptime as this kernel's /proc says them (the responder runs here as the "enclave").
    const meminfo = Object.fromEntries(
      readFileSync('/proc/meminfo', 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => [line.split(':')[0], Number.parseInt(line.split(':')[1]!, 10)]),
    );
    const used = (meminfo.MemTotal - meminfo.MemAvailable) / 1024;
    expect(Math.abs(second.memoryUsedMiB - used)).toBeLessThan(Math.max(256, used * 0.2));
    const uptime = Number.parseFloat(readFileSync('/proc/uptime', 'utf8'));
    expect(Math.abs(second.uptimeSeconds - uptime)).toBeLessThan(5);
    expect(second.uptimeSeconds).toBeGreaterThanOrEqual(first.uptimeSeconds);
    expect(nsm.requests).toEqual([]);
  });

  it('refuses a document answer to a metrics request, and a metrics answer to an attestation', async () => {
    const answering = (message: Record<string, unknown>) => () => {
      const stream = new PassThrough();
      stream.once('data', () => stream.push(encodeFrame({ v: 1, ...message }, MAX_RESPONSE_FRAME)));
      return stream;
    };
    await expect(
      requestMetrics(answering({ document: randomBytes(8) }), { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({ name: 'ProtocolError', code: 'malformed' });
    const metrics = { cpuUtilizationBasisPoints: 1, memoryUsedMiB: 2, uptimeSeconds: 3 };
    await expect(
      requestAttestation(answering({ metrics }), { nonce: randomBytes(8) }, { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({ name: 'ProtocolError', code: 'malformed' });
    // Out of range or missing fields are no metrics answer at all.
    for (const bad of [
      { ...metrics, cpuUtilizationBasisPoints: 10_001 },
      { ...metrics, memoryUsedMiB: -1 },
      { ...metrics, uptimeSeconds: 1.5 },
      { cpuUtilizationBasisPoints: 1, memoryUsedMiB: 2 },
      { ...metrics, extra: 1 },
    ]) {
      await expect(requestMetrics(answering({ metrics: bad }), { timeoutMs: 1_000 })).rejects.toMatchObject({
        code: 'malformed',
      });
    }
    await expect(requestMetrics(answering({ metrics }), { timeoutMs: 1_000 })).resolves.toEqual(metrics);
  });

  it.each<NsmErrorCode>(['InternalError', 'InvalidArgument'])(
    'hears an nsm-error when the NSM answers %s',
    async (code) => {
      nsmErrors.push(code);
      const refused = requestAttestation(connect(), { nonce: randomBytes(32) }, { timeoutMs: 10_000 });
      await expect(refused).rejects.toBeInstanceOf(ResponderRefusal);
      await expect(refused).rejects.toMatchObject({
        code: 'nsm-error',
        message: expect.stringContaining(code),
      });
    },
  );
});

describe('the responder refuses what breaks the protocol, and asks the NSM nothing', () => {
  const refusals: [string, Uint8Array, string][] = [
    ['another version', rawFrame({ v: 2, nonce: randomBytes(8) }), 'unsupported-version'],
    ['no version', rawFrame({ nonce: randomBytes(8) }), 'unsupported-version'],
    ['a version that is true', rawFrame({ v: true, nonce: randomBytes(8) }), 'unsupported-version'],
    ['no nonce', rawFrame({ v: 1 }), 'bad-request'],
    ['an empty nonce', rawFrame({ v: 1, nonce: Buffer.alloc(0) }), 'bad-request'],
    ['a 513-byte nonce', rawFrame({ v: 1, nonce: randomBytes(513) }), 'bad-request'],
    ['a nonce as text', rawFrame({ v: 1, nonce: 'abc' }), 'bad-request'],
    [
      '513 bytes of user data',
      rawFrame({ v: 1, nonce: randomBytes(8), userData: randomBytes(513) }),
      'bad-request',
    ],
    [
      'an empty public key',
      rawFrame({ v: 1, nonce: randomBytes(8), publicKey: Buffer.alloc(0) }),
      'bad-request',
    ],
    [
      'a 1025-byte public key',
      rawFrame({ v: 1, nonce: randomBytes(8), publicKey: randomBytes(1025) }),
      'bad-request',
    ],
    ['an unknown field', rawFrame({ v: 1, nonce: randomBytes(8), pcr: 0 }), 'bad-request'],
    ['metrics: false', rawFrame({ v: 1, metrics: false }), 'bad-request'],
    ['metrics with a nonce', rawFrame({ v: 1, metrics: true, nonce: randomBytes(8) }), 'bad-request'],
    ['metrics: 1', rawFrame({ v: 1, metrics: 1 }), 'bad-request'],
    ['an array', rawFrame([1, randomBytes(8)]), 'bad-request'],
    // A tagged byte string (tag 64) is not a byte string.
    ['a tagged nonce', hexFrame('a2617601656e6f6e6365d84043010203'), 'bad-request'],
    ['a half-float version', hexFrame('a26176f93c00656e6f6e636543010203'), 'bad-request'],
    ['bytes after the item', hexFrame('a0a0'), 'bad-request'],
    ['an indefinite-length map', hexFrame('bf617601656e6f6e636543010203ff'), 'bad-request'],
    ['a text key that is not UTF-8', hexFrame('a261ff0161760143010203'), 'bad-request'],
    ['an empty frame', Buffer.from([0, 0, 0, 0]), 'bad-request'],
    ['a frame over 4 KiB', Buffer.from([0, 0, 0x10, 0x01]), 'bad-request'],
  ];

  it.each(refusals)('%s', async (_, bytes, code) => {
    const answer = await raw(bytes);
    expect(answer).toMatchObject({ error: { code } });
    expect(nsm.requests).toEqual([]);
  });

  it('drops a client that stops mid-frame, and keeps serving', async () => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.end(Buffer.from([0, 0, 0, 40, 0xa1]));
    await new Promise((resolve) => socket.once('close', resolve));
    await expect(
      requestAttestation(connect(), { nonce: randomBytes(32) }, { timeoutMs: 10_000 }),
    ).resolves.toBeInstanceOf(Uint8Array);
  });
});

describe("the responder's NSM seam", () => {
  it('calls the ioctl the NSM driver takes: _IOWR(0x0A, 0, 32), two iovecs, a 12 KiB answer buffer', () => {
    const probe = spawnSync(
      'python3',
      [
        '-c',
        'import ctypes, sys; sys.path.insert(0, sys.argv[1]); import attestation_responder as r; ' +
          'print(ctypes.sizeof(r.NsmDevice._Message), hex(r.NsmDevice.IOCTL_REQUEST), r.NsmDevice.RESPONSE_MAX)',
        dirname(RESPONDER_SCRIPT),
      ],
      { encoding: 'utf8' },
    );
    expect(probe.stdout.trim()).toBe('32 0xc0200a00 12288');
  });

  it('answers nsm-error when the NSM cannot be reached', async () => {
    const { child: lonely, port: lonelyPort } = await startResponder(1);
    try {
      await expect(
        requestAttestation(
          tcpConnector('127.0.0.1', lonelyPort),
          { nonce: randomBytes(32) },
          { timeoutMs: 10_000 },
        ),
      ).rejects.toMatchObject({ name: 'ResponderRefusal', code: 'nsm-error' });
    } finally {
      lonely.kill();
    }
  });
});

describe('the client refuses', () => {
  /** A stand-in responder answering each connection with `reply` (or with silence). */
  async function fakeResponder(reply: Uint8Array | null): Promise<{ server: Server; port: number }> {
    const server = createServer((socket) => {
      socket.once('data', () => {
        if (reply) socket.end(reply);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as AddressInfo).port };
  }

  async function askFake(reply: Uint8Array | null, timeoutMs = 2_000) {
    const fake = await fakeResponder(reply);
    try {
      return await requestAttestation(
        tcpConnector('127.0.0.1', fake.port),
        { nonce: randomBytes(32) },
        { timeoutMs },
      );
    } finally {
      fake.server.close();
    }
  }

  it('a request it must not send (sizes checked before anything is sent)', () => {
    expect(() => encodeRequest({ nonce: new Uint8Array(0) })).toThrow(ProtocolError);
    expect(() => encodeRequest({ nonce: randomBytes(513) })).toThrow(/nonce must be 1..512 bytes/);
    expect(() => encodeRequest({ nonce: randomBytes(8), userData: randomBytes(513) })).toThrow(/userData/);
    expect(() => encodeRequest({ nonce: randomBytes(8), publicKey: randomBytes(1025) })).toThrow(/publicKey/);
    expect(() => encodeFrame({ v: 1, pad: randomBytes(MAX_REQUEST_FRAME) }, MAX_REQUEST_FRAME)).toThrow(
      /over 4096 bytes/,
    );
    expect(
      encodeRequest({ nonce: randomBytes(512), userData: randomBytes(512), publicKey: randomBytes(1024) })
        .length,
    ).toBeLessThanOrEqual(4 + MAX_REQUEST_FRAME);
  });

  it('an answer whose length is over the limit, without reading it', async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_RESPONSE_FRAME + 1);
    await expect(askFake(header)).rejects.toMatchObject({ name: 'ProtocolError', code: 'frame-too-large' });
  });

  it.each<[string, unknown]>([
    [
      'a document and an error',
      { v: 1, document: randomBytes(8), error: { code: 'nsm-error', message: 'x' } },
    ],
    ['an empty document', { v: 1, document: Buffer.alloc(0) }],
    ['a document as text', { v: 1, document: 'abc' }],
    ['an unknown error code', { v: 1, error: { code: 'teapot', message: 'x' } }],
    ['an error without a message', { v: 1, error: { code: 'nsm-error' } }],
    ['no version', { document: randomBytes(8) }],
    ['a map inside an array', [{ v: 1, document: randomBytes(8) }]],
  ])('a malformed answer: %s', async (_, message) => {
    await expect(askFake(rawFrame(message))).rejects.toBeInstanceOf(ProtocolError);
  });

  it('an answer cut short', async () => {
    const whole = rawFrame({ v: 1, document: randomBytes(64) });
    await expect(askFake(whole.subarray(0, 30))).rejects.toMatchObject({ code: 'truncated' });
  });

  it('silence, after its time', async () => {
    const started = Date.now();
    await expect(askFake(null, 300)).rejects.toBeInstanceOf(ResponderTimeout);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a port nobody listens on, at once', async () => {
    const closed = await fakeResponder(null);
    const { port: unused } = closed;
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    await expect(
      requestAttestation(tcpConnector('127.0.0.1', unused), { nonce: randomBytes(32) }, { timeoutMs: 5_000 }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
