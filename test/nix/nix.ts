import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');

/** Run a tool; a missing tool throws with what to install, so the test fails instead of skipping. */
export function run(command: string, args: readonly string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}): string {
  try {
    return execFileSync(command, args, {
      cwd: opts.cwd ?? REPO,
      input: opts.input,
      ...(opts.env ? { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env } } : {}),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; status?: number };
    if (err.code === 'ENOENT') throw new Error(`${command} is not installed (.ci/run installs it with apt-get)`);
    throw new Error(`${command} ${args.join(' ')} failed (exit ${err.status}): ${err.stderr ?? err.message}`);
  }
}

/** `nix-instantiate --eval --strict --json` of a file, with --argstr pairs. */
export function nixEval<T = unknown>(file: string, argstr: Record<string, string> = {}): T {
  const args = ['--eval', '--strict', '--json', file, ...Object.entries(argstr).flatMap(([k, v]) => ['--argstr', k, v])];
  return JSON.parse(run('nix-instantiate', args)) as T;
}

export interface Rendered {
  ruleset: { appliance: string; agent: string; requested: string };
  names: { tableName: string; sets: { v4: string; v6: string; ntpV4: string; ntpV6: string } };
  agentUnit: string;
  agentUnitAddressAllow: string;
  egressUnit: string;
  egressReloadUnit: string;
  diskScript: string;
  diskUnit: string;
  agentAddressAllow: { addresses: string[]; unreachable: string[] };
  agentAddressAllowAssertion: { assertion: boolean; message: string };
  diskSnapshotFile: string;
  config: Record<string, unknown>;
  loadCredentials: string[];
  healNixAccess: { environment: Record<string, string>; loadCredentials: string[] };
  exposureTarget: string;
  defaults: Record<string, unknown>;
  credentialsDir: string;
}

/** checks/render.nix with a ruleset request (and optionally module option values). */
export function render(rulesetArgs: unknown = {}, configArgs?: unknown): Rendered {
  return nixEval<Rendered>('checks/render.nix', {
    rulesetArgs: JSON.stringify(rulesetArgs),
    ...(configArgs === undefined ? {} : { configArgs: JSON.stringify(configArgs) }),
  });
}

/** Every .nix file of the repository (node_modules, .git and build output left out). */
export function nixFiles(dir = REPO): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', '.git', 'dist', 'result'].includes(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...nixFiles(path));
    else if (entry.name.endsWith('.nix')) out.push(relative(REPO, path));
  }
  return out.sort();
}

/** Module option values for reseller mode with a webhook and TLS syslog, which the module accepts. */
export function resellerOptions(): Record<string, unknown> {
  return {
    ...render().defaults,
    siteId: 'clinic-001',
    hostId: 'front-desk-1',
    deploymentMode: 'reseller',
    resellerId: 'msp-alpha',
    mcpUrl: 'https://mcp.example.com',
    allowedHosts: ['mcp.example.com', 'rmm.example.com', 'siem.example.com'],
    baselinePath: '/etc/compliance-agent/baseline.json',
    caFile: '/etc/compliance-agent/mcp-ca.pem',
    clientCertFile: '/run/secrets/client.pem',
    clientKeyFile: '/run/secrets/client.key',
    signingKeyFile: '/run/secrets/evidence.key',
    webhookSecretFile: '/run/secrets/webhook',
    rmmWebhookUrl: 'https://rmm.example.com/hooks',
    syslogTarget: 'tls://siem.example.com:6514',
    syslogCaFile: '/etc/compliance-agent/siem-ca.pem',
    trustedOrderKeys: ['msp:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
  };
}
