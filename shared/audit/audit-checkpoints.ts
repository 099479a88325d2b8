import { type Queryable, sql } from '../database/database.ts';
import { canonicalJson } from '../domain/canonical-json.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { verifyPartySignature } from '../signing/party-signatures.ts';
import { countersign } from '../signing/platform-key-registry.ts';
import { platformKeyAt } from '../signing/signer.ts';
import { GENESIS_HASH } from './audit-chain.ts';
import { inclusionProof, leafHash, rootFromProof, treeRoot } from './merkle-tree.ts';

/** One chain head as a checkpoint records it. */
export interface CheckpointLeaf {
  readonly entityId: string;
  readonly seq: number;
  readonly hash: string;
}

/** What the platform signs (RFC 8785 JSON): the tree over the heads and the previous checkpoint's root. */
export interface CheckpointStatement {
  readonly checkpoint: number;
  readonly createdAt: string;
  readonly prevRoot: string;
  readonly treeRoot: string;
  readonly treeSize: number;
}

export interface CheckpointProof {
  readonly signedPayload: string;
  readonly kid: string;
  readonly alg: 'ES256';
  readonly signature: string;
  readonly leaf: CheckpointLeaf;
  readonly leafIndex: number;
  /** Hex sibling hashes, bottom up (RFC 6962 audit path). */
  readonly proof: string[];
}

export function leafOf(head: CheckpointLeaf): Buffer {
  return leafHash(
    Buffer.from(canonicalJson({ entityId: head.entityId, seq: head.seq, hash: head.hash }), 'utf8'),
  );
}

/**
 * Takes a checkpoint of every chain whose head is not covered yet (at most `maxLeaves`, in entity id order;
 * the rest wait for the next run). Those heads are the rows of `audit_unanchored_heads`, which a trigger on
 * `audit_log` keeps (migration 0011), so a run reads what changed since the last one, never the whole
 * trail. The checkpoint, its leaves and the removal of the heads it anchors are one statement (a head that
 * moved on meanwhile stays queued), and checkpoint numbers are a primary key, so two concurrent runs cannot
 * fork the checkpoint chain: the loser fails, removes nothing, and its heads are taken next time. Returns
 * null when there was nothing to anchor.
 */
export async function createCheckpoint(
  deps: Dependencies,
  maxLeaves = 1000,
): Promise<CheckpointStatement | null> {
  const { rows: heads } = await deps.db.query<{ entity_id: string; seq: number; hash: string }>(
    'SELECT entity_id, seq, hash FROM audit_unanchored_heads ORDER BY entity_id LIMIT :max',
    { max: sql.int(maxLeaves) },
  );
  if (heads.length === 0) return null;
  const { rows: last } = await deps.db.query<{ seq: number; tree_root: string }>(
    'SELECT seq, tree_root FROM audit_checkpoints ORDER BY seq DESC LIMIT 1',
  );
  const leaves: CheckpointLeaf[] = heads.map((h) => ({ entityId: h.entity_id, seq: h.seq, hash: h.hash }));
  const statement: CheckpointStatement = {
    checkpoint: (last[0]?.seq ?? 0) + 1,
    createdAt: deps.now().toISOString(),
    prevRoot: last[0]?.tree_root ?? GENESIS_HASH,
    treeRoot: treeRoot(leaves.map(leafOf)).toString('hex'),
    treeSize: leaves.length,
  };
  const payload = canonicalJson(statement);
  const signed = await countersign(deps, payload, statement.createdAt);
  await deps.db.query(
    `WITH checkpoint AS (
       INSERT INTO audit_checkpoints (seq, created_at, prev_root, tree_root, tree_size, signed_payload, kid, alg, signature)
       VALUES (:seq, :created_at, :prev_root, :tree_root, :tree_size, :payload, :kid, :alg, :signature)
       RETURNING seq
     ),
     anchored AS (
       INSERT INTO audit_checkpoint_leaves (checkpoint_seq, leaf_index, entity_id, seq, hash)
       SELECT checkpoint.seq, (leaf.ordinality - 1)::int, (leaf.value->>'entityId')::uuid, (leaf.value->>'seq')::int,
              leaf.value->>'hash'
       FROM checkpoint, jsonb_array_elements(:leaves) WITH ORDINALITY AS leaf
       RETURNING entity_id, seq
     )
     DELETE FROM audit_unanchored_heads h USING anchored a WHERE h.entity_id = a.entity_id AND h.seq <= a.seq`,
    {
      seq: sql.int(statement.checkpoint),
      created_at: sql.timestamp(statement.createdAt),
      prev_root: sql.text(statement.prevRoot),
      tree_root: sql.text(statement.treeRoot),
      tree_size: sql.int(statement.treeSize),
      payload: sql.text(payload),
      kid: sql.text(signed.kid),
      alg: sql.text(signed.alg),
      signature: sql.text(signed.signature),
      leaves: sql.json(leaves),
    },
  );
  return statement;
}

/** The latest checkpoint covering `entityId`, with the inclusion proof of its head; null if none yet. */
export async function loadCheckpointProof(q: Queryable, entityId: string): Promise<CheckpointProof | null> {
  const { rows } = await q.query<{
    checkpoint_seq: number;
    signed_payload: string;
    kid: string;
    alg: 'ES256';
    signature: string;
  }>(
    `SELECT c.seq AS checkpoint_seq, c.signed_payload, c.kid, c.alg, c.signature
     FROM audit_checkpoint_leaves l JOIN audit_checkpoints c ON c.seq = l.checkpoint_seq
     WHERE l.entity_id = :entity_id ORDER BY l.checkpoint_seq DESC LIMIT 1`,
    { entity_id: sql.uuid(entityId) },
  );
  const checkpoint = rows[0];
  if (!checkpoint) return null;
  const { rows: leafRows } = await q.query<{ entity_id: string; seq: number; hash: string }>(
    `SELECT entity_id, seq, hash FROM audit_checkpoint_leaves WHERE checkpoint_seq = :cp ORDER BY leaf_index`,
    { cp: sql.int(checkpoint.checkpoint_seq) },
  );
  const leaves = leafRows.map((r) => ({ entityId: r.entity_id, seq: r.seq, hash: r.hash }));
  const index = leaves.findIndex((l) => l.entityId === entityId);
  return {
    signedPayload: checkpoint.signed_payload,
    kid: checkpoint.kid,
    alg: checkpoint.alg,
    signature: checkpoint.signature,
    leaf: leaves[index]!,
    leafIndex: index,
    proof: inclusionProof(leaves.map(leafOf), index).map((b) => b.toString('hex')),
  };
}

/**
 * Checks a checkpoint proof as any client can: the platform's signature over the statement, and the
 * head's inclusion in the signed tree. Returns the reason it fails, or null when it holds.
 */
export function verifyCheckpointProof(
  proof: CheckpointProof,
  platformKeys: readonly Record<string, unknown>[],
): string | null {
  let statement: CheckpointStatement;
  try {
    statement = JSON.parse(proof.signedPayload) as CheckpointStatement;
  } catch {
    return 'the checkpoint statement is not JSON';
  }
  // The key must have been valid when the checkpoint was taken (the time it states, which it signs).
  const key = platformKeyAt(platformKeys, proof.kid, String(statement?.createdAt));
  if ('issue' in key) return key.issue;
  const signatureValid = verifyPartySignature(
    'ES256',
    key.jwk,
    Buffer.from(proof.signedPayload, 'utf8'),
    proof.signature,
  );
  if (!signatureValid) return 'the checkpoint signature does not verify';
  const root = rootFromProof(
    leafOf(proof.leaf),
    proof.leafIndex,
    statement.treeSize,
    proof.proof.map((h) => Buffer.from(h, 'hex')),
  );
  if (!root || root.toString('hex') !== statement.treeRoot) return 'the head is not in the signed tree';
  return null;
}
