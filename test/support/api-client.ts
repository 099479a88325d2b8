import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { LocalStack } from '../../infra/local/local-stack.ts';
import { SEEDED_IDENTITIES, type SeededName, seededSubject } from '../../infra/local/seed.ts';
import { LOCAL_REGION } from '../../infra/local/services/local-account.ts';
import { signApiRequest } from '../../infra/parent-agent/agent-api.ts';
import type { InstanceCredentials } from '../../infra/parent-agent/imds.ts';
import type { RegisterKey, SignatureAlgorithm } from '../../shared/domain/identity.ts';
import { keyRegistrationProof, signAs } from './key-proof.ts';
import { OpenApiConformance } from './openapi-conformance.ts';

/** Every response any suite gets through ApiClient is held to the OpenAPI document. */
const conformance = new OpenApiConformance();

/** The statuses each operation answered in this test file (operationId → statuses). */
export const observedStatuses = new Map<string, Set<number>>();

export interface ApiResponse<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

export const seeded = Object.fromEntries(SEEDED_IDENTITIES.map((s) => [s.name, s.id])) as Record<
  SeededName,
  string
>;

/** One request through node:http, answered as a fetch Response. */
function sendWithBody(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | Buffer,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const length = String(Buffer.byteLength(body));
    const req = httpRequest(url, { method, headers: { ...headers, 'content-length': length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const answer = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) answer.set(name, Array.isArray(value) ? value.join(', ') : value);
        }
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: answer }));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A thin HTTP client over the dev server, acting as one identity (or anonymously). */
export class ApiClient {
  /**
   * `auth`: a bearer token (the JWT routes), or the temporary credentials of a role session whose requests
   * are signed with SigV4 for `execute-api` (the parents' `iam` routes).
   */
  constructor(
    private readonly baseUrl: string,
    private readonly auth?: string | InstanceCredentials,
  ) {}

  /** A client signing as `credentials` (an instance's role session, say: see `LocalEnclaves.credentials`). */
  static signing(stack: LocalStack, credentials: InstanceCredentials): ApiClient {
    return new ApiClient(stack.url, credentials);
  }

  static async as(stack: LocalStack, who: SeededName | { subject: string }): Promise<ApiClient> {
    const subject = typeof who === 'string' ? seededSubject(who) : who.subject;
    return new ApiClient(stack.url, await stack.issuer.mint(subject));
  }

  static anonymous(stack: LocalStack): ApiClient {
    return new ApiClient(stack.url);
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      rawBody?: string | Buffer;
      headers?: Record<string, string>;
      /**
       * Not held to the OpenAPI document: for the gateway's own refusals (an oversized header, a malformed
       * path), which come before any operation and which the document cannot list per operation.
       */
      unchecked?: boolean;
    } = {},
  ): Promise<ApiResponse<T>> {
    let headers: Record<string, string> = { ...options.headers };
    if (typeof this.auth === 'string') headers.authorization = `Bearer ${this.auth}`;
    let body: string | Buffer | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const url = `${this.baseUrl}/api/v1${path}`;
    if (this.auth !== undefined && typeof this.auth !== 'string') {
      headers = await signApiRequest(
        { method, url: new URL(url), headers, ...(body === undefined ? {} : { body }) },
        this.auth,
        LOCAL_REGION,
      );
    }
    // fetch refuses a body on GET; API Gateway passes one to the function, so node:http sends it.
    const res =
      body !== undefined && (method === 'GET' || method === 'HEAD')
        ? await sendWithBody(url, method, headers, body)
        : await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    if (!options.unchecked) {
      const { operationId, mismatches } = conformance.check({
        method,
        path: `/api/v1${path}`,
        status: res.status,
        headers: res.headers,
        body: text,
      });
      if (mismatches.length > 0)
        throw new Error(`the response departs from the OpenAPI document:\n${mismatches.join('\n')}`);
      if (operationId) {
        const seen = observedStatuses.get(operationId) ?? new Set<number>();
        observedStatuses.set(operationId, seen.add(res.status));
      }
    }
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  get<T = Record<string, unknown>>(path: string, headers?: Record<string, string>) {
    return this.request<T>('GET', path, headers ? { headers } : {});
  }
  post<T = Record<string, unknown>>(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, {
      ...(body !== undefined ? { body } : {}),
      ...(headers ? { headers } : {}),
    });
  }
  put<T = Record<string, unknown>>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('PUT', path, { body, ...(headers ? { headers } : {}) });
  }
  delete<T = Record<string, unknown>>(path: string, headers?: Record<string, string>) {
    return this.request<T>('DELETE', path, headers ? { headers } : {});
  }
}

/** A party's signing key pair: registered through the API, used to sign `signingPayload`s. */
export class PartyKey {
  readonly privateKey: KeyObject;
  readonly publicJwk: Record<string, unknown>;

  /** `rsaBits` sizes a PS256 key (2048 by default). */
  constructor(
    readonly alg: SignatureAlgorithm = 'ES256',
    rsaBits = 2048,
  ) {
    const pair =
      alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : alg === 'ES384'
          ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
          : alg === 'EdDSA'
            ? generateKeyPairSync('ed25519')
            : generateKeyPairSync('rsa', { modulusLength: rsaBits });
    this.privateKey = pair.privateKey;
    this.publicJwk = pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  }

  sign(payload: string): string {
    return signAs(this.alg, this.privateKey, Buffer.from(payload, 'utf8'));
  }

  /** The body of `POST /identities/{identityId}/keys` for this key, with its proof of possession. */
  async registration(identityId: string, kid?: string) {
    return {
      alg: this.alg,
      jwk: this.publicJwk as RegisterKey['jwk'],
      proof: await keyRegistrationProof(this.privateKey, this.alg, identityId),
      ...(kid !== undefined ? { kid } : {}),
    };
  }

  async register(client: ApiClient, identityId: string): Promise<string> {
    const res = await client.post<{ kid: string }>(
      `/identities/${identityId}/keys`,
      await this.registration(identityId),
    );
    if (res.status !== 201) throw new Error(`key registration failed: ${res.status} ${res.text}`);
    return res.body.kid;
  }
}
