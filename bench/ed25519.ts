/**
 * Ed25519 sign and verify rates: @noble/ed25519 (pure JS, the reference the agent's node:crypto verifier is fuzzed against) against node:crypto
 * (OpenSSL), on the bytes the agent really signs: the DSSE PAE of a typical evidence bundle.
 *
 *   npx tsx bench/ed25519.ts [SECONDS_PER_ROW]      (default 1)
 *
 * Each row runs for the given time after a warm-up; rates are operations per second. The agent's
 * own sign() is measured too (src/crypto, what the evidence chain calls).
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import * as noble from '@noble/ed25519';
import { EVIDENCE_PAYLOAD_TYPE, pae, publicKeyOf, randomSeed, sign as agentSign, verify as agentVerify } from '../src/crypto/index.js';
import { sampleDraft } from '../test/helpers/evidence.js';
import { machine } from './lib.js';

export interface Ed25519Figures {
  readonly messageBytes: number;
  readonly rows: readonly { what: string; perSecond: number }[];
  readonly signRatio: number;
  readonly verifyRatio: number;
}

function rate(seconds: number, fn: () => void): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
  }
  return n / ((performance.now() - start) / 1000);
}

export function measureEd25519(seconds = 1): Ed25519Figures {
  const seed = randomSeed();
  const pub = publicKeyOf(seed);
  const message = pae(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ version: '1.0', ...sampleDraft(), seq: 1234, prev_hash: `sha256:${'c'.repeat(64)}` })));
  const priv = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const pubKey = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]), format: 'der', type: 'spki' });
  const sig = nodeSign(null, message, priv);
  if (!Buffer.from(noble.sign(message, seed)).equals(sig)) throw new Error('noble and node:crypto disagree on a signature');
  const rows = [
    { what: '@noble/ed25519 sign', perSecond: rate(seconds, () => noble.sign(message, seed)) },
    { what: 'node:crypto sign', perSecond: rate(seconds, () => nodeSign(null, message, priv)) },
    { what: 'agent sign (src/crypto)', perSecond: rate(seconds, () => agentSign(message, seed)) },
    { what: '@noble/ed25519 verify (strict)', perSecond: rate(seconds, () => noble.verify(sig, message, pub, { zip215: false })) },
    { what: 'node:crypto verify', perSecond: rate(seconds, () => nodeVerify(null, message, pubKey, sig)) },
    { what: 'agent verify (src/crypto)', perSecond: rate(seconds, () => agentVerify(sig, message, pub)) },
  ];
  const r = (w: string) => rows.find((x) => x.what === w)!.perSecond;
  return {
    messageBytes: message.length,
    rows,
    signRatio: r('node:crypto sign') / r('@noble/ed25519 sign'),
    verifyRatio: r('node:crypto verify') / r('@noble/ed25519 verify (strict)'),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const m = machine();
  const f = measureEd25519(Number(process.argv[2] ?? 1));
  console.log(`Ed25519 over a ${f.messageBytes}-byte evidence PAE; ${m.cores} x ${m.cpu}, node ${m.node}`);
  for (const row of f.rows) console.log(`${row.what.padEnd(32)} ${row.perSecond.toFixed(0).padStart(8)} /s`);
  console.log(`node:crypto / noble: sign ${f.signRatio.toFixed(1)}x, verify ${f.verifyRatio.toFixed(1)}x`);
}
