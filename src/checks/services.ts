import type { Check } from './types.js';
import { excerpt, runCommand } from './exec.js';
import { startResult } from './result.js';

const STATES = new Set(['active', 'inactive', 'failed', 'activating', 'deactivating', 'reloading', 'refreshing', 'maintenance', 'unknown']);

/**
 * Restarting these interrupts the appliance even though a restart is quick: journald loses log
 * streams, dbus and the network daemons drop clients or links, and an nftables
 * reload flushes the ruleset and the egress allowlist sets until they are filled again.
 */
const DISRUPTIVE_UNITS = [
  /^systemd-journald(@[^.]*)?\.(service|socket)$/,
  /^systemd-journald-(dev-log|audit)\.socket$/,
  /^dbus(-broker)?\.service$/,
  /^(systemd-networkd|systemd-resolved|NetworkManager|wpa_supplicant)\.service$/,
  /^(nftables|firewall)\.service$/,
];

export function isDisruptiveUnit(unit: string): boolean {
  return DISRUPTIVE_UNITS.some((re) => re.test(unit));
}

/**
 * The baseline's required units are active (`systemctl is-active`). Heals by restarting the units
 * that are not; a restart is not disruptive unless the unit is (isDisruptiveUnit).
 */
export const servicesCheck: Check = {
  name: 'services',
  controls: ['HIPAA 164.312(b)', 'HIPAA 164.308(a)(1)(ii)(D)', 'SOC 2 CC7.1', 'SOC 2 CC7.2', 'SOC 2 A1.2'],
  heal: { kind: 'restart_units' },
  async run(ctx) {
    const required = ctx.baseline.services.required;
    const done = startResult('services', ctx, { required: [...required] });
    if (required.length === 0) return done('compliant', 'the baseline requires no units', { units: {} });

    // is-active exits 3 when a unit is not active: that is an answer, not a failure. Unit states
    // live in systemd, not in files, so this is the one command an idle cycle runs (everyCycle).
    const r = await runCommand(ctx.host, 'systemctl', ['is-active', ...required], { okExitCodes: [0, 3, 4], everyCycle: true });
    if (!r.ok) return done('error', r.message);
    const lines = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    if (lines.length !== required.length || !lines.every((l) => STATES.has(l))) {
      return done('error', `systemctl is-active printed ${lines.length} line(s) for ${required.length} unit(s), not unit states ("${excerpt(r.stdout)}")`);
    }
    const units = Object.fromEntries(required.map((u, i) => [u, lines[i]!]));
    const notActive = required.filter((u) => units[u] !== 'active');
    if (notActive.length === 0) return done('compliant', `all ${required.length} required units are active`, { units }, []);
    return done('drift', `${notActive.length} of ${required.length} required units not active: ${notActive.map((u) => `${u} (${units[u]})`).join(', ')}`, { units }, notActive);
  },
};
