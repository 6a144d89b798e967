import * as z from 'zod';
import { parseJsonText } from '../common/index.js';
import type { Host } from '../host/index.js';
import type { Check } from './types.js';
import { excerpt, runCommand } from './exec.js';
import { resultMaker } from './result.js';

interface BlockDevice {
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
 * `cryptsetup status` needs root; the unprivileged agent usually cannot run it, so lsblk (which
 * reads sysfs and udev) decides, and cryptsetup only adds the LUKS version and cipher when it can.
 */
async function cryptDetails(host: Host, name: string): Promise<Record<string, string> | string> {
  const r = await runCommand(host, 'cryptsetup', ['status', name]);
  if (!r.ok) return `unavailable: ${r.why}`;
  const fields = Object.fromEntries(
    r.stdout
      .split('\n')
      .map((l) => /^\s+(type|cipher|keysize|mode):\s+(.+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!.trim()]),
  );
  if (!/ is active/.test(r.stdout) || !fields.type) return `unavailable: cryptsetup status ${name} printed no status ("${excerpt(r.stdout)}")`;
  return fields;
}

/**
 * Each required mount lives on a LUKS-encrypted device. Never healed: encrypting a volume means
 * reinstalling or migrating its data, which no agent should do on its own (seed non-goal).
 */
export const encryptionCheck: Check = {
  name: 'encryption',
  controls: ['HIPAA 164.312(a)(2)(iv)', 'HIPAA 164.310(d)(1)', 'SOC 2 CC6.1', 'SOC 2 CC6.7'],
  disruptive: false,
  heal: { kind: 'report_only', why: 'encrypting a volume needs a reinstall or a data migration; never done automatically' },
  async run(ctx) {
    const required = ctx.baseline.encryption.requiredMounts;
    const done = resultMaker('encryption', ctx, { requiredMounts: [...required] });
    if (required.length === 0) return done('compliant', 'the baseline requires no encrypted mounts', { mounts: {} });

    const r = await runCommand(ctx.host, 'lsblk', ['--json', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS']);
    if (!r.ok) return done('error', r.why);
    const json = parseJsonText(r.stdout);
    const parsed = Lsblk.safeParse(json.ok ? json.value : undefined);
    if (!parsed.success) return done('error', `lsblk --json printed no block device list ("${excerpt(r.stdout)}")`);

    const mounts = mountedChains(parsed.data.blockdevices);
    const findings: Record<string, MountFinding | null> = {};
    for (const path of required) {
      const m = findMount(path, mounts);
      findings[path] = m ? inspect(m.chain, m.mount) : null;
    }
    const details: Record<string, Record<string, string> | string> = {};
    for (const name of new Set(Object.values(findings).flatMap((f) => (f?.crypt ? [f.crypt] : [])))) {
      details[name] = await cryptDetails(ctx.host, name);
    }
    const observed = { mounts: findings, cryptsetup: details };

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
