import * as z from 'zod';
import { parseJsonText } from '../common/index.js';
import type { Check, CheckContext } from './types.js';
import { excerpt, runCommand } from './exec.js';
import { startResult } from './result.js';
import { readSnapshot } from './snapshot.js';

/** A device of `lsblk --json -o NAME,TYPE,FSTYPE,MOUNTPOINTS` as util-linux prints it. */
export interface BlockDevice {
  name: string;
  type: string;
  fstype: string | null;
  mountpoints: (string | null)[];
  children?: BlockDevice[];
}

const BlockDeviceSchema: z.ZodType<BlockDevice> = z.lazy(() =>
  z.object({
    name: z.string(),
    type: z.string(),
    fstype: z.string().nullable(),
    mountpoints: z.array(z.string().nullable()),
    children: z.array(BlockDeviceSchema).optional(),
  }),
);
const Lsblk = z.object({ blockdevices: z.array(BlockDeviceSchema) });

/** What the root-side snapshot unit writes (modules/lib/snapshots.nix, diskScript). */
const DiskSnapshot = z.object({
  version: z.literal(1),
  lsblk: Lsblk,
  cryptsetup: z.record(z.string(), z.object({ exitCode: z.number().int(), output: z.string() })),
});

/** The block devices, and a way to ask `cryptsetup status` about one of them. */
interface DiskFacts {
  devices: BlockDevice[];
  cryptStatus(name: string): Promise<{ exitCode: number; output: string } | { message: string }>;
  source: string;
}

const LSBLK_ARGS = ['--json', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS'] as const;

/**
 * From the snapshot file when configured (the agent's unit hides /dev/mapper and cannot run
 * cryptsetup), else from lsblk and cryptsetup run here.
 */
async function diskFacts(ctx: CheckContext): Promise<{ ok: true; facts: DiskFacts } | { ok: false; message: string }> {
  const file = ctx.config.diskSnapshotFile;
  if (file) {
    const snapshot = await readSnapshot(ctx, file);
    if (!snapshot.ok) return { ok: false, message: `disk snapshot ${snapshot.message}` };
    const json = parseJsonText(snapshot.text);
    const parsed = DiskSnapshot.safeParse(json.ok ? json.value : undefined);
    if (!parsed.success) return { ok: false, message: `disk snapshot ${file} is not a lsblk/cryptsetup snapshot ("${excerpt(snapshot.text)}")` };
    const { lsblk, cryptsetup } = parsed.data;
    return {
      ok: true,
      facts: {
        devices: lsblk.blockdevices,
        source: file,
        cryptStatus: async (name) => cryptsetup[name] ?? { message: `${file} has no cryptsetup status for ${name}` },
      },
    };
  }
  const r = await runCommand(ctx.host, 'lsblk', LSBLK_ARGS);
  if (!r.ok) return { ok: false, message: r.message };
  const json = parseJsonText(r.stdout);
  const parsed = Lsblk.safeParse(json.ok ? json.value : undefined);
  if (!parsed.success) return { ok: false, message: `lsblk --json printed no block device list ("${excerpt(r.stdout)}")` };
  return {
    ok: true,
    facts: {
      devices: parsed.data.blockdevices,
      source: 'lsblk',
      cryptStatus: async (name) => {
        const c = await runCommand(ctx.host, 'cryptsetup', ['status', name]);
        return c.ok ? { exitCode: c.exitCode, output: c.stdout } : { message: c.message };
      },
    },
  };
}

interface MountFinding {
  mountedAt: string;
  device: string;
  fstype: string | null;
  /** The dm-crypt mapping under the file system, if any. */
  crypt: string | null;
  luks: boolean;
}

/** Every mounted device with its chain of parents (file system first, disk last). */
function mountedChains(devices: readonly BlockDevice[], parents: BlockDevice[] = []): { mount: string; chain: BlockDevice[] }[] {
  const out: { mount: string; chain: BlockDevice[] }[] = [];
  for (const d of devices) {
    const chain = [d, ...parents];
    for (const m of d.mountpoints) if (m) out.push({ mount: m, chain });
    if (d.children) out.push(...mountedChains(d.children, chain));
  }
  return out;
}

/** The mount holding `path`: the longest mount point that is a prefix of it. */
function findMount(path: string, mounts: readonly { mount: string; chain: BlockDevice[] }[]): { mount: string; chain: BlockDevice[] } | undefined {
  const covers = (m: string): boolean => m === '/' || path === m || path.startsWith(`${m}/`);
  return mounts.filter((m) => covers(m.mount)).sort((a, b) => b.mount.length - a.mount.length)[0];
}

function inspect(chain: readonly BlockDevice[], mountedAt: string): MountFinding {
  const cryptIndex = chain.findIndex((d) => d.type === 'crypt');
  const crypt = cryptIndex >= 0 ? chain[cryptIndex]! : null;
  const backing = crypt ? chain[cryptIndex + 1] : undefined;
  return { mountedAt, device: chain[0]!.name, fstype: chain[0]!.fstype, crypt: crypt?.name ?? null, luks: backing?.fstype === 'crypto_LUKS' };
}

/**
 * `cryptsetup status` needs root; the unprivileged agent cannot run it itself, so lsblk (which
 * reads sysfs and udev) decides, and cryptsetup only adds the LUKS version and cipher when it can.
 */
async function cryptDetails(facts: DiskFacts, name: string): Promise<Record<string, string> | string> {
  const r = await facts.cryptStatus(name);
  if ('message' in r) return `unavailable: ${r.message}`;
  if (r.exitCode !== 0) return `unavailable: cryptsetup status ${name} exited ${r.exitCode} ("${excerpt(r.output)}")`;
  const fields = Object.fromEntries(
    r.output
      .split('\n')
      .map((l) => /^\s+(type|cipher|keysize|mode):\s+(.+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!.trim()]),
  );
  if (!/ is active/.test(r.output) || !fields.type) return `unavailable: cryptsetup status ${name} printed no status ("${excerpt(r.output)}")`;
  return fields;
}

/**
 * Each required mount lives on a LUKS-encrypted device. Never healed: encrypting a volume means
 * reinstalling or migrating its data, which no agent should do on its own: a non-goal.
 */
export const encryptionCheck: Check = {
  name: 'encryption',
  controls: ['HIPAA 164.312(a)(2)(iv)', 'HIPAA 164.310(d)(1)', 'SOC 2 CC6.1', 'SOC 2 CC6.7'],
  heal: { kind: 'report_only', why: 'encrypting a volume needs a reinstall or a data migration; never done automatically' },
  async run(ctx) {
    const required = ctx.baseline.encryption.requiredMounts;
    const done = startResult('encryption', ctx, { requiredMounts: [...required] });
    if (required.length === 0) return done('compliant', 'the baseline requires no encrypted mounts', { mounts: {} });

    const got = await diskFacts(ctx);
    if (!got.ok) return done('error', got.message);
    const { facts } = got;

    const mounts = mountedChains(facts.devices);
    const findings: Record<string, MountFinding | null> = {};
    for (const path of required) {
      const m = findMount(path, mounts);
      findings[path] = m ? inspect(m.chain, m.mount) : null;
    }
    const details: Record<string, Record<string, string> | string> = {};
    for (const name of new Set(Object.values(findings).flatMap((f) => (f?.crypt ? [f.crypt] : [])))) {
      details[name] = await cryptDetails(facts, name);
    }
    const observed = { source: facts.source, mounts: findings, cryptsetup: details };

    const problems: string[] = [];
    for (const path of required) {
      const f = findings[path];
      const d = f?.crypt ? details[f.crypt] : undefined;
      if (!f) problems.push(`${path} is not on any mounted file system`);
      else if (!f.crypt) problems.push(`${path} is on ${f.device} (${f.fstype ?? 'no file system'}), not encrypted`);
      else if (!f.luks) problems.push(`${path} is on ${f.crypt}, plain dm-crypt without LUKS`);
      else if (typeof d === 'object' && d.cipher === 'cipher_null') problems.push(`${path} is on ${f.crypt} with cipher_null (no encryption)`);
    }
    if (problems.length) return done('drift', problems.join('; '), observed);
    const where = required.map((p) => `${p} on ${findings[p]!.crypt}`).join(', ');
    return done('compliant', `all ${required.length} required mounts are on LUKS devices (${where})`, observed);
  },
};
