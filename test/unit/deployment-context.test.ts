import { describe, expect, it } from 'vitest';
import { enclaveArtifactsFromContext } from '../../infra/deployment-context.ts';

const SHA = 'a'.repeat(64);
const FULL = { eifUrl: 's3://release-artifacts/enclaves/training-runner-1.4.2.eif', eifSha256: SHA };
const read = (context: Record<string, unknown>) => enclaveArtifactsFromContext((key) => context[key]);

describe('the default enclave image of a deployment', () => {
  it('is read from the context, as an S3 object or an https URL', () => {
    expect(read(FULL)).toEqual({ imageUrl: FULL.eifUrl, imageSha256: SHA });
    expect(read({ ...FULL, eifUrl: 'https://artifacts.example.com/enclave.eif' })).toEqual({
      imageUrl: 'https://artifacts.example.com/enclave.eif',
      imageSha256: SHA,
    });
  });

  it('is required: without it the synthesis is refused, saying how to give it', () => {
    expect(() => read({})).toThrow(
      /No default enclave image configured: the parents would fetch a placeholder and fail.*-c eifUrl=s3:\/\/bucket\/key \(or https:\/\/…\) -c eifSha256=<hex>.*-c placeholderArtifacts=true/,
    );
    expect(() => read({ placeholderArtifacts: 'false' })).toThrow(/No default enclave image configured/);
  });

  it('may be left out only by a synthesis that says it is for inspection', () => {
    expect(read({ placeholderArtifacts: 'true' })).toBeUndefined();
    expect(read({ placeholderArtifacts: true })).toBeUndefined();
  });

  it('must be complete and well formed, each problem named', () => {
    expect(() => read({ eifUrl: FULL.eifUrl })).toThrow(
      'Enclave artifacts incomplete: missing -c eifSha256=….',
    );
    expect(() => read({ eifSha256: SHA })).toThrow('Enclave artifacts incomplete: missing -c eifUrl=….');
    expect(() => read({ eifUrl: 'http://artifacts.example.com/enclave.eif', eifSha256: 'XYZ' })).toThrow(
      /eifUrl must be an s3:\/\/bucket\/key or https:\/\/ URL \(got "http:\/\/artifacts\.example\.com\/enclave\.eif"\); eifSha256 must be 64 lowercase hex digits/,
    );
    for (const url of ['not a url', 's3://bucket-only', 's3:///key', "https://example.com/a'b.eif"]) {
      expect(() => read({ ...FULL, eifUrl: url }), url).toThrow(/eifUrl must be/);
    }
    expect(() => read({ ...FULL, eifSha256: SHA.toUpperCase() })).toThrow(
      /eifSha256 must be 64 lowercase hex/,
    );
  });
});
