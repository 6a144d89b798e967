import { fail, ok, type SimReply } from './reply.js';

/** A partition and what sits on it: a file system directly, or a dm-crypt mapping first. */
export interface SimVolume {
  readonly disk: string;
  readonly partition: string;
  readonly fstype: string;
  mountpoints: string[];
  crypt: { readonly name: string; readonly type: 'LUKS2' | 'LUKS1' | 'PLAIN' } | null;
}

interface LsblkNode {
  name: string;
  type: string;
  fstype: string | null;
  mountpoints: (string | null)[];
  children?: LsblkNode[];
}

/** Block devices: `lsblk --json -o NAME,TYPE,FSTYPE,MOUNTPOINTS` and `cryptsetup status NAME`. */
export class Disks {
  constructor(readonly volumes: SimVolume[]) {}

  lsblk(args: readonly string[]): SimReply {
    const wanted = ['--json', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS'];
    if (args.length !== wanted.length || args.some((a, i) => a !== wanted[i])) {
      return fail(1, `lsblk: simulated host only answers ${wanted.join(' ')}\n`);
    }
    const disks = new Map<string, LsblkNode>();
    for (const v of this.volumes) {
      const disk = disks.get(v.disk) ?? { name: v.disk, type: 'disk', fstype: null, mountpoints: [null], children: [] };
      disks.set(v.disk, disk);
      const mounts = v.mountpoints.length ? [...v.mountpoints] : [null];
      disk.children!.push(
        v.crypt
          ? {
              name: v.partition,
              type: 'part',
              fstype: v.crypt.type === 'PLAIN' ? null : 'crypto_LUKS',
              mountpoints: [null],
              children: [{ name: v.crypt.name, type: 'crypt', fstype: v.fstype, mountpoints: mounts }],
            }
          : { name: v.partition, type: 'part', fstype: v.fstype, mountpoints: mounts },
      );
    }
    // util-linux indents its JSON by three spaces.
    return ok(JSON.stringify({ blockdevices: [...disks.values()] }, null, 3) + '\n', 25);
  }

  cryptsetup(args: readonly string[]): SimReply {
    if (args.length !== 2 || args[0] !== 'status') return fail(1, 'Usage: cryptsetup [OPTION...] <action> <action-specific>\n');
    const name = args[1]!;
    const v = this.volumes.find((x) => x.crypt?.name === name);
    if (!v?.crypt) return { exitCode: 4, stdout: `/dev/mapper/${name} is inactive.\n`, stderr: '' };
    const inUse = v.mountpoints.length > 0 ? ' and is in use' : '';
    return ok(
      [
        `/dev/mapper/${name} is active${inUse}.`,
        `  type:    ${v.crypt.type}`,
        '  cipher:  aes-xts-plain64',
        '  keysize: 512 bits',
        '  key location: keyring',
        `  device:  /dev/${v.partition}`,
        '  sector size:  512',
        '  offset:  32768 sectors',
        '  size:    41906176 sectors',
        '  mode:    read/write',
        '',
      ].join('\n'),
      40,
    );
  }
}
