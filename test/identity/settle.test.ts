import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import { identityPaths } from '../../src/identity/index.js';
import { verifyPath } from '../../src/evidence/index.js';
import { parsePublicKey } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';

const DAY = 86_400_000;
const tmp = tempDir();
let h: Harness;
let paths: ReturnType<typeof identityPaths>;
/** Pair A (enrolled) and pair B (renewed), kept aside to lay out the states a crash leaves. */
const A = { cert: '', key: '' };
const B = { cert: '', key: '' };

beforeAll(async () => {
  h = await startHarness(tmp.path, { enrollment: {} });
  await h.enroll();
  paths = identityPaths(h.config);
  A.cert = join(tmp.path, 'a-cert.pem');
  A.key = join(tmp.path, 'a-key.pem');
  copyFileSync(paths.cert, A.cert);
  copyFileSync(paths.tlsKey, A.key);
  const rt = h.openAgent();
  await rt.agent.cycle();
  h.host.advance(61 * DAY);
  await rt.agent.cycle();
  await rt.close();
  B.cert = join(tmp.path, 'b-cert.pem');
  B.key = join(tmp.path, 'b-key.pem');
  copyFileSync(paths.cert, B.cert);
  copyFileSync(paths.tlsKey, B.key);
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;
const spkiOf = (pem: string) => createPublicKey(pem).export({ format: 'der', type: 'spki' }).toString('base64');

/** Lay out a state, start the agent on it (a restart), run a cycle: it must poll over a matching pair. */
async function startOn(files: Record<string, string | null>): Promise<void> {
  for (const [to, from] of Object.entries(files)) {
    if (from === null) continue;
    copyFileSync(from, to);
  }
  const rt = h.openAgent();
  try {
    expect((await rt.agent.cycle()).polled).toBe('none');
  } finally {
    await rt.close();
  }
  expect(spkiOf(readFileSync(paths.tlsKey, 'utf8'))).toBe(spkiOf(new X509Certificate(readFileSync(paths.cert)).publicKey.export({ format: 'pem', type: 'spki' }).toString()));
  expect(readdirSync(join(h.dir, 'identity')).filter((f) => /pending|commit|\.next$/.test(f))).toEqual([]);
}

describe('a restart after a crash in the middle of a renewal', () => {
  it('pending pair written, probe not passed (no commit): the old pair stays', async () => {
    await startOn({ [paths.cert]: A.cert, [paths.tlsKey]: A.key, [paths.certPending]: B.cert, [paths.tlsKeyPending]: B.key });
    expect(serialOf(paths.cert)).toBe(serialOf(A.cert));
  });

  it('probe passed (commit written), nothing renamed yet: the new pair is completed', async () => {
    writeFileSync(paths.renewalCommit, 'x\n');
    await startOn({ [paths.cert]: A.cert, [paths.tlsKey]: A.key, [paths.certPending]: B.cert, [paths.tlsKeyPending]: B.key });
    expect(serialOf(paths.cert)).toBe(serialOf(B.cert));
  });

  it('committed, the key renamed but not the certificate (a mismatched pair on disk): completed', async () => {
    writeFileSync(paths.renewalCommit, 'x\n');
    await startOn({ [paths.cert]: A.cert, [paths.tlsKey]: B.key, [paths.certPending]: B.cert, [paths.tlsKeyPending]: null });
    expect(serialOf(paths.cert)).toBe(serialOf(B.cert));
  });
});

describe('a restart after a crash in the middle of a key rotation', () => {
  it('rotation bundle chained, key not yet renamed: the new key signs from then on and the chain verifies from the first key', async () => {
    const first = (JSON.parse(readFileSync(paths.record, 'utf8')) as { evidence_key: string }).evidence_key;
    const oldKey = join(tmp.path, 'old-evidence.key');
    copyFileSync(paths.signingKey, oldKey);
    const rotate = await import('../../src/identity/index.js');
    rotate.stageKeyRotation(h.config, h.host.now());
    const staged = readFileSync(paths.signingKeyNext, 'utf8');
    const rt = h.openAgent();
    await rt.agent.cycle();
    await rt.close();
    expect(existsSync(paths.signingKeyNext)).toBe(false);
    // The state of a crash right after the rotation bundle's commit: old key in place, new one staged.
    copyFileSync(paths.signingKey, paths.signingKeyNext);
    copyFileSync(oldKey, paths.signingKey);
    h.host.stopService('postgresql.service');
    await startOn({});
    expect(readFileSync(paths.signingKey, 'utf8')).toBe(staged);
    const report = verifyPath(join(h.config.stateDir, 'evidence'), [parsePublicKey(first, 'first key')]);
    expect(report.findings).toEqual([]);
    expect(report.verified.filter((v) => v.bundle.check === 'key_rotation')).toHaveLength(1);
    expect(report.verified.at(-1)!.bundle.check).toBe('services');
  });
});
