import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inclusionProof, leafHash, rootFromProof, treeRoot } from '../../shared/audit/merkle-tree.ts';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

describe('RFC 6962 Merkle tree', () => {
  it('proves every leaf of every tree size up to 40', () => {
    for (let n = 1; n <= 40; n++) {
      const l = leaves(n);
      const root = treeRoot(l);
      for (let i = 0; i < n; i++) {
        expect(rootFromProof(l[i]!, i, n, inclusionProof(l, i))?.equals(root)).toBe(true);
      }
    }
  });

  it('matches the RFC 6962 structure for three leaves', () => {
    const l = leaves(3);
    const node = (a: Buffer, b: Buffer) =>
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(a)
        .update(b)
        .digest();
    expect(treeRoot(l).equals(node(node(l[0]!, l[1]!), l[2]!))).toBe(true);
  });

  // The tree size is signed with the root; a proof alone cannot always tell sizes with the same path shape.
  it('refuses a wrong leaf, index or path', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 64 }),
        fc.nat(),
        fc.constantFrom('leaf', 'index', 'path'),
        (n, seed, how) => {
          const l = leaves(n);
          const i = seed % n;
          const root = treeRoot(l);
          const proof = inclusionProof(l, i);
          const other = (i + 1) % n;
          const result =
            how === 'leaf'
              ? rootFromProof(l[other]!, i, n, proof)
              : how === 'index'
                ? rootFromProof(l[i]!, other, n, proof)
                : rootFromProof(
                    l[i]!,
                    i,
                    n,
                    proof.map((p, j) => (j === 0 ? leafHash(p) : p)),
                  );
          expect(result?.equals(root) ?? false).toBe(false);
        },
      ),
    );
  });
});
