import { describe, expect, it } from 'vitest';
import { enclaveArtifactsFromContext } from '../../infra/deployment-context.ts';

const SHA = 'a'.repeat(64);
const FULL = {
  eifUrl: 'https://artifacts.example.com/enclave.eif',
  eifSha256: SHA,
  agentUrl: 'https://artifacts.example.com/parent-agent.mjs',
  agentSha256: 'b'.repeat(64),
};
const read = (context: Record<string, unknown>) => enclaveArtifactsFromContext((key) => context[key]);

describe('the enclave artifacts of a deployment', () => {
  it('are read from the context', () => {
    expect(read(FULL)).toEqual({
      imageUrl: FULL.eifUrl,
      imageSha256: SHA,
      agentUrl: FULL.agentUrl,
      agentSha256: 'b'.repeat(64),
    });
  });

  it('are required: without them the synthesis is refused, saying how to give them', () => {
    expect(() => read({})).toThrow(
      /No enclave artifacts configured: the parents would download a placeholder and fail at boot.*-c eifUrl=https:\/\/… -c eifSha256=<hex> -c agentUrl=https:\/\/… -c agentSha256=<hex>.*-c placeholderArtifacts=true/,
    );
    expect(() => read({ placeholderArtifacts: 'false' })).toThrow(/No enclave artifacts configured/);
  });

  it('may be left out only by a synthesis that says it is for inspection', () => {
    expect(read({ placeholderArtifacts: 'true' })).toBeUndefined();
    expect(read({ placeholderArtifacts: true })).toBeUndefined();
  });

  it('must be complete and well formed, each problem named', () => {
    expect(() => read({ eifUrl: FULL.eifUrl, eifSha256: SHA })).toThrow(
      'Enclave artifacts incomplete: missing -c agentUrl=…, -c agentSha256=….',
    );
    expect(() =>
      read({ ...FULL, eifUrl: 'http://artifacts.example.com/enclave.eif', agentSha256: 'XYZ' }),
    ).toThrow(
      /eifUrl must be an https:\/\/ URL \(got "http:\/\/artifacts\.example\.com\/enclave\.eif"\); agentSha256 must be 64 lowercase hex digits/,
    );
    expect(() => read({ ...FULL, agentUrl: 'not a url' })).toThrow(/agentUrl must be an https:\/\/ URL/);
    expect(() => read({ ...FULL, eifSha256: SHA.toUpperCase() })).toThrow(
      /eifSha256 must be 64 lowercase hex/,
    );
  });
});
