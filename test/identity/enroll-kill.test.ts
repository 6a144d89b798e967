import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { CLI, cli } from '../helpers/cli.js';

const tmp = tempDir();
let h: Harness;
/** Fixed seeds: each one a kill point, printed so a failure can be replayed. */
const SEEDS = [11, 23, 37, 41, 59, 67, 73, 89];

beforeAll(async () => {
  h = await startHarness(tmp.path, { enrollment: {} });
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

/** mulberry32: a small seeded PRNG, so the kill points are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type KillPoint = { readonly after: 'start' | 'answer'; readonly ms: number };

/**
 * Start `enroll` and SIGKILL it `ms` after it started, or after the MCP answered its request (the
 * window where the token is used up at the MCP and the appliance is still writing). Resolves when
 * it is gone, with whether it finished first.
 */
function enrollKilled(configPath: string, tokenFile: string, hostId: string, at: KillPoint): Promise<'killed' | 'finished'> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, 'enroll', '--config', configPath, '--token-file', tokenFile], { stdio: 'ignore' });
    let timer: NodeJS.Timeout | undefined;
    const watch = setInterval(() => {
      if (at.after === 'start' || h.mcp.enrollment!.enrolled.some((e) => e.hostId === hostId)) {
        clearInterval(watch);
        timer = setTimeout(() => child.kill('SIGKILL'), at.ms);
      }
    }, 1);
    child.on('exit', (_code, signal) => {
      clearInterval(watch);
      clearTimeout(timer);
      resolve(signal === 'SIGKILL' ? 'killed' : 'finished');
    });
  });
}

function spki(pem: string | X509Certificate): string {
  return (typeof pem === 'string' ? createPublicKey(pem) : pem.publicKey).export({ format: 'der', type: 'spki' }).toString('base64');
}

describe('kill -9 during enrollment', () => {
  it.each(SEEDS)('seed %i: the next start completes the enrollment, with one identity at the MCP', async (seed) => {
    const random = prng(seed);
    const at: KillPoint = random() < 0.5 ? { after: 'start', ms: Math.round(300 + random() * 2700) } : { after: 'answer', ms: Math.round(random() * 25) };
    console.log(`kill -9 enrollment: seed ${seed}, kill ${at.ms} ms after the ${at.after === 'start' ? 'start' : "MCP's answer"}`);
    const root = join(tmp.path, `seed-${seed}`);
    mkdirSync(root, { recursive: true });
    const hostId = `kill-${seed}`;
    const identityDir = join(root, 'identity');
    const config = {
      ...(JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>),
      hostId,
      clientCertFile: join(identityDir, 'client-cert.pem'),
      clientKeyFile: join(identityDir, 'client-key.pem'),
      signingKeyFile: join(identityDir, 'evidence-signing.key'),
      stateDir: join(root, 'state'),
    };
    const configPath = join(root, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    const tokenFile = join(root, 'token');
    writeFileSync(tokenFile, h.mcp.enrollment!.issueToken('clinic-001') + '\n', { mode: 0o600 });

    const first = await enrollKilled(configPath, tokenFile, hostId, at);
    const left = existsSync(identityDir) ? readdirSync(identityDir).sort().join(' ') : '(nothing)';
    const sent = h.mcp.enrollment!.enrolled.some((e) => e.hostId === hostId);
    console.log(`  ${first}; left: ${left}; token ${sent ? 'used' : 'unused'} at the MCP`);
    const again = await cli('enroll', '--config', configPath, '--token-file', tokenFile);
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(first === 'finished' ? /^already enrolled/ : /^(enrolled|already enrolled)/);

    // A whole identity: the certificate carries the key on disk, the record names that certificate.
    const cert = new X509Certificate(readFileSync(config.clientCertFile));
    expect(spki(cert)).toBe(spki(readFileSync(config.clientKeyFile, 'utf8')));
    const record = JSON.parse(readFileSync(join(identityDir, 'enrollment.json'), 'utf8')) as { certificate_serial: string; evidence_key: string };
    expect(record.certificate_serial).toBe(cert.serialNumber.toLowerCase());
    expect(existsSync(tokenFile)).toBe(false);
    const atMcp = h.mcp.enrollment!.enrolled.filter((e) => e.hostId === hostId);
    expect(atMcp).toHaveLength(1);
    expect(atMcp[0]!.evidenceKey).toBe(record.evidence_key);
  });
});
