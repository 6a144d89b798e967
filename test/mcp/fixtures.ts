import { randomUUID } from 'node:crypto';
import { AGENT_VERSION } from '../../src/common/index.js';
import { EVIDENCE_PAYLOAD_TYPE, publicKeyOf, randomSeed, signEnvelope, type Envelope, type PublicKey, type SecretKey } from '../../src/crypto/index.js';
import type { EvidenceBundle } from '../../src/evidence/index.js';
import { McpClient, type McpClientOptions } from '../../src/mcp/index.js';
import type { Pki } from '../../testing/index.js';
import { sampleDraft } from '../helpers/evidence.js';

export function agentKey(name = 'appliance-1', seed: Uint8Array = randomSeed()): { secret: SecretKey; pub: PublicKey } {
  const secret: SecretKey = { keyId: name, seed, publicKey: publicKeyOf(seed) };
  return { secret, pub: { keyId: name, publicKey: secret.publicKey } };
}

export function bundle(seq: number, overrides: Partial<EvidenceBundle> = {}): EvidenceBundle {
  return { ...sampleDraft({ bundle_id: randomUUID() }), version: '1.0', agent_version: AGENT_VERSION, seq, prev_hash: null, ...overrides };
}

export function evidenceEnvelope(key: SecretKey, seq: number, overrides: Partial<EvidenceBundle> = {}): Envelope {
  return signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(bundle(seq, overrides))), key);
}

export function bundleIdOf(env: Envelope): string {
  return (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { bundle_id: string }).bundle_id;
}

/** A client for `url` with the PKI's real client cert, unless overridden. */
export function clientFor(pki: Pki, url: string, overrides: Partial<McpClientOptions> = {}): McpClient {
  return McpClient.create({
    mcpUrl: url,
    caFile: pki.caCert,
    clientCertFile: pki.clientCert,
    clientKeyFile: pki.clientKey,
    siteId: 'clinic-001',
    hostId: 'appliance-1',
    ...overrides,
  });
}
