import type { Baseline } from '../../src/config/index.js';
import { rulesetHash } from '../../src/checks/index.js';
import { SimulatedHost, type ApplianceProfile } from './simulated-host.js';
import { nixpkgsRevisionFor, type GenerationSpec } from './generations.js';
import { sampleRuleset } from './firewall.js';
import { hexOf } from './store-path.js';
import type { UnitKind } from './units.js';

/** The site flake's git revision the appliance runs and its baseline expects. */
export const SAMPLE_REVISION = hexOf('clinic-001/revision/2', 40);
/** The site repository the MSP manages the appliance from (an allowedFlakes prefix). */
export const SAMPLE_FLAKE_SOURCE = 'git+https://git.msp.example/sites/clinic-001';
/** A pinned reference to a commit of the site flake. */
function sampleFlakeRef(revision: string): string {
  return `${SAMPLE_FLAKE_SOURCE}?ref=main&rev=${revision}#appliance`;
}
export const SAMPLE_FLAKE_REF = sampleFlakeRef(SAMPLE_REVISION);
/** The revision of the generation before it (what a rollback returns to). */
export const SAMPLE_PREVIOUS_REVISION = hexOf('clinic-001/revision/1', 40);
/** 2026-11-23T12:00:00Z: inside no default maintenance window (02:00-04:00 UTC). */
export const SAMPLE_NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

const SERVICES: Record<string, UnitKind> = {
  'sshd.service': 'service',
  'chronyd.service': 'service',
  'nftables.service': 'exited',
  'systemd-journald.service': 'service',
  'postgresql.service': 'service',
  'compliance-agent.service': 'service',
  'restic-backups-appliance.service': 'oneshot',
};

export interface ApplianceOptions {
  readonly hostname?: string;
  /** Simulated clock start; default SAMPLE_NOW. Pass Date.now() for wall-clock evidence. */
  readonly now?: number;
  /** Directory for the appliance's files; default a fresh temp directory (remove with dispose()). */
  readonly root?: string;
  readonly revision?: string;
  readonly previousRevision?: string;
  readonly flakeRef?: string;
  /** Age of the last successful backup at start, hours; default 3. */
  readonly backupAgeHours?: number;
  /** Simulated duration of a rebuild; default 45 s. */
  readonly rebuildMs?: number;
}

function spec(revision: string, release: string, ruleset: string): GenerationSpec {
  return { configurationRevision: revision, release, nixpkgsRevision: nixpkgsRevisionFor(`${release}/${revision}`), units: SERVICES, ruleset };
}

/**
 * A healthy, compliant clinic appliance: generation 2 of its site flake running (generation 1
 * before it), required services up, firewall as declared, root and backup volumes on LUKS,
 * chrony 0.8 ms off, a backup 3 hours old. baselineFor(host) is the baseline it complies with.
 */
export function simulatedAppliance(opts: ApplianceOptions = {}): SimulatedHost {
  const revision = opts.revision ?? SAMPLE_REVISION;
  const flakeRef = opts.flakeRef ?? sampleFlakeRef(revision);
  const profile: ApplianceProfile = {
    flakeRef,
    requiredUnits: ['sshd.service', 'chronyd.service', 'nftables.service', 'systemd-journald.service', 'postgresql.service'],
    backupUnit: 'restic-backups-appliance.service',
    backupStampFile: '/var/backup/last-success.stamp',
    encryptedMounts: ['/', '/var/backup'],
  };
  const current = spec(revision, '25.05', sampleRuleset());
  const host = new SimulatedHost({
    hostname: opts.hostname ?? 'clinic-001-appliance',
    now: opts.now ?? SAMPLE_NOW,
    ...(opts.root === undefined ? {} : { root: opts.root }),
    profile,
    history: [spec(opts.previousRevision ?? SAMPLE_PREVIOUS_REVISION, '25.05', sampleRuleset({ tcpPorts: [22] })), current],
    flakes: { [flakeRef]: current },
    volumes: [
      { disk: 'vda', partition: 'vda1', fstype: 'vfat', mountpoints: ['/boot'], crypt: null },
      { disk: 'vda', partition: 'vda2', fstype: 'ext4', mountpoints: ['/nix/store', '/'], crypt: { name: 'cryptroot', type: 'LUKS2' } },
      { disk: 'vdb', partition: 'vdb1', fstype: 'ext4', mountpoints: ['/var/backup'], crypt: { name: 'cryptbackup', type: 'LUKS2' } },
    ],
    ntp: { offsetMs: 0.8, synchronised: true, server: '192.168.10.1', stratum: 3 },
    ...(opts.rebuildMs === undefined ? {} : { rebuildMs: opts.rebuildMs }),
  });
  host.setBackupAge(opts.backupAgeHours ?? 3);
  return host;
}

/** The baseline a freshly built appliance complies with: its managed flake, units, backup, firewall, mounts. */
export function baselineFor(host: SimulatedHost): Baseline {
  const { profile } = host;
  const target = host.flakeSpec(profile.flakeRef);
  if (!target?.configurationRevision) throw new Error(`simulated host builds nothing committed for ${profile.flakeRef}`);
  return {
    version: 1,
    patching: { configurationRevision: target.configurationRevision, flakeRef: profile.flakeRef },
    services: { required: [...profile.requiredUnits] },
    backup: { unit: profile.backupUnit, stampFile: profile.backupStampFile, maxAgeHours: 26 },
    firewall: { rulesetHash: rulesetHash(target.ruleset) },
    encryption: { requiredMounts: [...profile.encryptedMounts] },
  };
}
