import { createHash } from 'node:crypto';

/**
 * RFC 6962 / RFC 9162 Merkle tree hashes: a leaf is SHA-256(0x00 ‖ data), an inner node
 * SHA-256(0x01 ‖ left ‖ right), and a tree of n leaves splits at the largest power of two below n. An
 * inclusion proof lets a client check one chain head against a signed root without seeing the others.
 */
const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export function leafHash(data: Uint8Array): Buffer {
  return sha256(LEAF, data);
}

function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(NODE, left, right);
}

function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The root of the tree over `leaves` (already leaf-hashed). */
export function treeRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0]!;
  const k = split(leaves.length);
  return nodeHash(treeRoot(leaves.slice(0, k)), treeRoot(leaves.slice(k)));
}

/** The audit path of leaf `index`: sibling hashes from the bottom of the tree to the top. */
export function inclusionProof(leaves: readonly Buffer[], index: number): Buffer[] {
  if (index < 0 || index >= leaves.length) throw new RangeError('leaf index out of range');
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return index < k
    ? [...inclusionProof(leaves.slice(0, k), index), treeRoot(leaves.slice(k))]
    : [...inclusionProof(leaves.slice(k), index - k), treeRoot(leaves.slice(0, k))];
}

/** The root implied by a leaf, its index, the tree size and the audit path; null when they cannot fit. */
export function rootFromProof(
  leaf: Buffer,
  index: number,
  size: number,
  proof: readonly Buffer[],
): Buffer | null {
  if (index < 0 || index >= size) return null;
  if (size === 1) return proof.length === 0 ? leaf : null;
  if (proof.length === 0) return null;
  const k = split(size);
  const sibling = proof.at(-1)!;
  const rest = proof.slice(0, -1);
  if (index < k) {
    const left = rootFromProof(leaf, index, k, rest);
    return left && nodeHash(left, sibling);
  }
  const right = rootFromProof(leaf, index - k, size - k, rest);
  return right && nodeHash(sibling, right);
}
