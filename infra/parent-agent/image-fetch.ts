/**
 * Fetches the enclave image (EIF) to the parent's disk, pinned by its SHA-256: the bytes are hashed as they
 * arrive, written to a temporary file beside the target, and renamed into place only when the digest
 * matches, so a file at the target path is always the pinned image (and a parent that boots again finds it
 * there, checked, and fetches nothing).
 *
 * Sources: an `https://` URL (an enclave's `image.source`, fetched without credentials), or an `s3://bucket/key`
 * object (the deployment's default image, a CDK asset), fetched with the instance role's credentials signed for
 * S3 (the role may `s3:GetObject` that one key). A download that stalls (no byte for `stallMs`) is abandoned.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import type { InstanceCredentials } from './imds.ts';

export class ImageFetchError extends Error {
  override readonly name = 'ImageFetchError';
  constructor(
    message: string,
    /** Worth another try: the source did not answer, failed on its side, or stalled. */
    readonly transient: boolean,
  ) {
    super(message);
  }
}

export interface ImageSource {
  readonly url: string;
  /** 64 lower-case hex digits. */
  readonly sha256: string;
}

export interface ImageFetchOptions {
  readonly region: string;
  readonly credentials: () => Promise<InstanceCredentials>;
  /** No byte for this long abandons the download (ms). @default 60000 */
  readonly stallMs?: number;
  /** Progress, in bytes received (the agent heartbeats while it downloads). */
  readonly onProgress?: (bytes: number) => void;
  /** Where `s3://` sources are read (the local stack's stand-in). @default the regional S3 endpoint */
  readonly s3Endpoint?: string;
}

/** Whether `path` already holds exactly the pinned image. */
export async function holdsImage(path: string, sha256: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
  } catch {
    return false;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex') === sha256;
}

/**
 * Puts the pinned image at `path` (nothing fetched when it is there already).
 * @throws ImageFetchError a refused or failed download, a stall, or bytes that do not match the digest
 */
export async function fetchImage(
  source: ImageSource,
  path: string,
  options: ImageFetchOptions,
): Promise<'present' | 'fetched'> {
  if (!/^[0-9a-f]{64}$/.test(source.sha256))
    throw new ImageFetchError('the image digest is not 64 hex digits', false);
  if (await holdsImage(path, source.sha256)) return 'present';
  const request = await requestFor(source.url, options);
  const stallMs = options.stallMs ?? 60_000;
  const controller = new AbortController();
  let stallTimer = setTimeout(() => controller.abort(), stallMs);
  const partial = `${path}.partial`;
  try {
    let response: Response;
    try {
      response = await fetch(request.url, { headers: request.headers, signal: controller.signal });
    } catch (error) {
      throw new ImageFetchError(`the image source did not answer: ${(error as Error).message}`, true);
    }
    if (!response.ok || !response.body) {
      throw new ImageFetchError(
        `the image source answered ${response.status}`,
        response.status >= 500 || response.status === 429,
      );
    }
    const hash = createHash('sha256');
    const out = createWriteStream(partial, { mode: 0o640 });
    let received = 0;
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => controller.abort(), stallMs);
        hash.update(chunk);
        received += chunk.length;
        options.onProgress?.(received);
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      }
    } catch (error) {
      const stalled = controller.signal.aborted;
      throw new ImageFetchError(
        stalled
          ? `the image download stalled: no byte for ${stallMs} ms after ${received} bytes`
          : `the image download failed after ${received} bytes: ${(error as Error).message}`,
        true,
      );
    } finally {
      await new Promise<void>((resolve, reject) =>
        out.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
    }
    const digest = hash.digest('hex');
    if (digest !== source.sha256) {
      throw new ImageFetchError(
        `the image's SHA-256 is ${digest}, not the pinned ${source.sha256}: refused`,
        false,
      );
    }
    await rename(partial, path);
    return 'fetched';
  } finally {
    clearTimeout(stallTimer);
    await rm(partial, { force: true });
  }
}

async function requestFor(
  url: string,
  options: ImageFetchOptions,
): Promise<{ url: string; headers: Record<string, string> }> {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return { url, headers: {} };
  if (parsed.protocol !== 's3:')
    throw new ImageFetchError(
      `an image is fetched over https:// or from s3://, not ${parsed.protocol}`,
      false,
    );
  const bucket = parsed.hostname;
  const key = parsed.pathname.replace(/^\//, '');
  if (!bucket || !key) throw new ImageFetchError('an s3:// image names a bucket and a key', false);
  const endpoint = new URL(options.s3Endpoint ?? `https://s3.${options.region}.amazonaws.com`);
  // Path-style on the regional endpoint: the bucket names of CDK assets hold no dots, either style works.
  const path = `${endpoint.pathname.replace(/\/$/, '')}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  const credentials = await options.credentials();
  const signer = new SignatureV4({
    service: 's3',
    region: options.region,
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
    },
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: 'GET',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
      path,
      headers: { host: endpoint.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    }),
  );
  const headers = { ...signed.headers } as Record<string, string>;
  delete headers.host;
  return { url: `${endpoint.origin}${path}`, headers };
}
