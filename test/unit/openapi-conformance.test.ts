import { describe, expect, it } from 'vitest';
import { OpenApiConformance } from '../support/openapi-conformance.ts';

/** The checker every end-to-end response goes through: it must refuse each way a response can depart. */
const conformance = new OpenApiConformance();
const ID = '11111111-1111-4111-8111-111111111111';
const identity = {
  id: ID,
  subject: 'local|provider',
  name: 'provider',
  displayName: 'Provider',
  email: null,
  roles: ['provider'],
  status: 'active',
  statusReason: null,
  version: 3,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};
const json = { 'content-type': 'application/json', etag: '"3"' };
const problem = (status: number) =>
  JSON.stringify({ type: 'https://problems.enclave-contracts.dev/x', title: 'X', status, detail: 'x' });

const check = (exchange: Partial<Parameters<OpenApiConformance['check']>[0]>) =>
  conformance.check({
    method: 'GET',
    path: '/api/v1/identities/me',
    status: 200,
    headers: json,
    body: JSON.stringify(identity),
    ...exchange,
  });

describe('the OpenAPI conformance check', () => {
  it('passes a response the document declares', () => {
    expect(check({})).toEqual({ operationId: 'getMyIdentity', mismatches: [] });
    expect(check({ path: `/api/v1/identities/${ID}` }).operationId).toBe('getIdentity');
  });

  it('refuses a status the operation does not declare', () => {
    const { mismatches } = check({
      status: 409,
      headers: { 'content-type': 'application/problem+json' },
      body: problem(409),
    });
    expect(mismatches).toEqual([expect.stringContaining('getMyIdentity does not declare 409')]);
  });

  it('refuses a missing required header, and a header that breaks its schema', () => {
    expect(check({ headers: { 'content-type': 'application/json' } }).mismatches).toEqual([
      expect.stringContaining('header ETag is required and missing'),
    ]);
    expect(check({ headers: { ...json, etag: '3' } }).mismatches).toEqual([
      expect.stringContaining('header ETag: 3'),
    ]);
    const unauthorized = { status: 401, body: JSON.stringify({ message: 'Unauthorized' }) };
    expect(check({ ...unauthorized, headers: { 'content-type': 'application/json' } }).mismatches).toEqual([
      expect.stringContaining('header WWW-Authenticate is required and missing'),
    ]);
    expect(
      check({
        ...unauthorized,
        headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer' },
      }).mismatches,
    ).toEqual([]);
  });

  it('refuses a media type the response does not declare, and a body that is not JSON', () => {
    expect(check({ headers: { ...json, 'content-type': 'text/plain' } }).mismatches).toEqual([
      expect.stringContaining('content-type text/plain is not one of application/json'),
    ]);
    expect(check({ body: 'not json' }).mismatches).toEqual([expect.stringContaining('the body is not JSON')]);
  });

  it('refuses a body that breaks its schema: a missing field, an extra one, a wrong format', () => {
    const { version: _v, ...withoutVersion } = identity;
    for (const body of [withoutVersion, { ...identity, secret: 'x' }, { ...identity, id: 'not-a-uuid' }]) {
      expect(check({ body: JSON.stringify(body) }).mismatches).toEqual([
        expect.stringContaining('does not match its schema'),
      ]);
    }
  });

  it('refuses a body where the response declares none', () => {
    const { mismatches } = check({
      method: 'DELETE',
      path: `/api/v1/contracts/${ID}`,
      status: 204,
      headers: {},
      body: '{}',
    });
    expect(mismatches).toEqual([expect.stringContaining('declares no body')]);
  });

  it('leaves alone what no operation answered (the gateway), reading paths as sent on the wire', () => {
    expect(check({ path: '/api/v1/nothing-here', status: 404 })).toEqual({
      operationId: undefined,
      mismatches: [],
    });
    // `/enclaves/./attestation` is `/enclaves/attestation` on the wire: GET /enclaves/{id}, not a POST route.
    expect(
      check({ method: 'POST', path: '/api/v1/enclaves/./attestation', status: 405 }).operationId,
    ).toBeUndefined();
  });
});
