import * as z from 'zod';
import { DNS_NAME, parseSyslogTarget } from './syslog-target.js';
import { FlakePrefixSchema, PinnedFlakeRefSchema, SubstituterSchema, parsePinnedFlakeRef } from './nix-refs.js';

const absPath = z
  .string()
  .min(1)
  .refine((p) => p.startsWith('/'), 'must be an absolute path');
const hostname = z.string().min(1).max(253).regex(DNS_NAME, 'must be a DNS host name');
const ident = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, dot, dash or underscore');
const positiveInt = z.number().int().positive();
export const WINDOW_RE = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/;
const TRUSTED_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}:[A-Za-z0-9+/]{43}=$/;
/** The longest orderTtl an appliance can be configured with: `order sign --ttl` refuses more. */
export const MAX_ORDER_TTL_S = 86_400;

function isHttpsUrl(s: string): boolean {
  try {
    return new URL(s).protocol === 'https:';
  } catch {
    return false;
  }
}

function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

/** config.json: the NixOS module's options (same names and defaults); docs/config.md documents every key. */
export const ConfigSchema = z
  .object({
    mcpUrl: z.string().refine(isHttpsUrl, 'must be an https:// URL').default('https://mcp.local'),
    allowedHosts: z.array(hostname).min(1).default(['mcp.local']),
    siteId: ident,
    hostId: ident.optional(),
    deploymentMode: z.enum(['reseller', 'direct']).default('reseller'),
    resellerId: ident.nullable().default(null),
    baselinePath: absPath,
    policyVersion: z.string().min(1).max(64).default('1.0'),
    clientCertFile: absPath,
    clientKeyFile: absPath,
    signingKeyFile: absPath,
    webhookSecretFile: absPath.nullable().default(null),
    pollInterval: positiveInt.max(86_400).default(60),
    orderTtl: positiveInt.max(MAX_ORDER_TTL_S).default(900),
    maintenanceWindow: z.string().regex(WINDOW_RE, 'must be HH:MM-HH:MM (UTC, 24h)').default('02:00-04:00'),
    allowDisruptiveOutsideWindow: z.boolean().default(false),
    evidenceRetention: positiveInt.default(200),
    pruneRetentionDays: z.number().int().nonnegative().default(90),
    ntpMaxSkewMs: positiveInt.default(5000),
    rmmWebhookUrl: z
      .string()
      .refine(isHttpsUrl, 'must be an https:// URL')
      // Credentials in the URL would end up in logs and dead-letter reasons; the HMAC secret is the auth.
      .refine((u) => !isHttpsUrl(u) || (!new URL(u).username && !new URL(u).password), 'must not carry a user or password')
      .nullable()
      .default(null),
    syslogTarget: z
      .string()
      .superRefine((s, ctx) => {
        const r = parseSyslogTarget(s);
        if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
      })
      .nullable()
      .default(null),
    /** The CA that signs the TLS syslog receiver's certificate (the reseller's SIEM, not the MCP). */
    syslogCaFile: absPath.nullable().default(null),
    /** The CA that signs the RMM webhook's certificate, the only one then trusted; null: Node's public roots. */
    webhookCaFile: absPath.nullable().default(null),
    /** The Prometheus textfile; null: metrics.prom in stateDir (readable by the agent's user only). */
    metricsFile: absPath.nullable().default(null),
    rebuildHealthCheckTimeout: positiveInt.max(3600).default(60),
    logLevel: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).default('INFO'),
    caFile: absPath,
    trustedOrderKeys: z.array(z.string().regex(TRUSTED_KEY_RE, 'must be name:base64 of a 32-byte Ed25519 public key')).min(1, 'needs at least one trusted order key'),
    stateDir: absPath.default('/var/lib/compliance-agent'),
    /**
     * The root healer's tree: its own state (root only), the drop box the agent may only create
     * its own files in (requests/), and the results root writes for the agent to read.
     */
    healDir: absPath.default('/var/lib/compliance-agent-heal'),
    /** Longest wait, in seconds after issued_at, an order may ask for with execute_by (default 7 days). */
    maxDeferral: positiveInt.max(90 * 86_400).default(7 * 86_400),
    heartbeatInterval: positiveInt.default(3600),
    /**
     * Seconds a compliant patching or encryption result is reused by the agent while the running
     * system is unchanged (a switch re-checks at once); 0: every cycle. The healer always checks fresh.
     */
    stableCheckInterval: z.number().int().nonnegative().max(86_400).default(900),
    /** Seconds a compliant time (NTP) result is reused by the agent; 0: every cycle. */
    timeCheckInterval: z.number().int().nonnegative().max(86_400).default(300),
    /**
     * The MCP's Ed25519 receipt keys (name:base64, several for rotation): a delivery counts only
     * with a receipt one of them signed, and prune deletes only bundles with such a receipt.
     */
    mcpReceiptKeys: z.array(z.string().regex(TRUSTED_KEY_RE, 'must be name:base64 of a 32-byte Ed25519 public key')).default([]),
    /** Seconds without a newer MSP-signed order (a heartbeat) before control_plane_stale is raised. */
    controlPlaneMaxAge: positiveInt.max(30 * 86_400).default(86_400),
    /**
     * Listing the ruleset needs CAP_NET_ADMIN, which the agent never holds: on NixOS a root unit
     * writes `nft list ruleset` here on a timer and the firewall check reads it. null: run nft.
     */
    rulesetSnapshotFile: absPath.nullable().default(null),
    /**
     * Flake URL prefixes (`github:msp/sites`, `git+https://git.msp.example/sites`) an
     * apply_baseline order may name, matched on a path boundary. Empty: only the repository of
     * the baseline's own flakeRef.
     */
    allowedFlakes: z.array(FlakePrefixSchema).max(64).default([]),
    /**
     * Distinct trusted keys that must sign each order type; a type not named needs 1. An
     * unknown type is refused when orders are verified (the vocabulary lives with the orders).
     */
    orderSignaturesRequired: z.record(z.string().regex(/^[a-z_]{1,64}$/, 'must be an order type'), z.number().int().min(1).max(8)).default({}),
    /** Binary caches an apply_closure order's store path may be substituted from. */
    closureSubstituters: z.array(SubstituterSchema).max(16).default([]),
    /** Public keys (`name:base64`, Nix's trusted-public-keys form) a substituted closure must be signed by. */
    closureTrustedPublicKeys: z.array(z.string().regex(TRUSTED_KEY_RE, 'must be name:base64 of a 32-byte Ed25519 public key')).max(16).default([]),
    /** NTP servers (names or addresses) the egress allowlist lets udp/123 through to; nothing else. */
    timeServers: z
      .array(z.union([hostname, z.ipv4(), z.ipv6()]))
      .max(16)
      .default([]),
    /** Read by `compliance-agent enroll`; the stable machine identifier is an HMAC of it keyed by siteId. */
    machineIdFile: absPath.default('/etc/machine-id'),
    /** The agent renews its mTLS certificate this many days before expiry (or at half its lifetime, if shorter). */
    certRenewBeforeDays: positiveInt.max(3650).default(30),
    /**
     * The encryption check's facts (`lsblk --json` and `cryptsetup status` per crypt device): the
     * agent's unit hides /dev/mapper and cryptsetup needs root, so on NixOS a root unit writes them
     * here on a timer. null: run lsblk and cryptsetup.
     */
    diskSnapshotFile: absPath.nullable().default(null),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.deploymentMode === 'reseller' && !c.resellerId) {
      ctx.addIssue({ code: 'custom', path: ['resellerId'], message: 'is required when deploymentMode is "reseller"' });
    }
    if (c.rmmWebhookUrl && c.deploymentMode === 'reseller' && !c.webhookSecretFile) {
      ctx.addIssue({ code: 'custom', path: ['webhookSecretFile'], message: 'is required when rmmWebhookUrl is set in reseller mode' });
    }
    if (isHttpsUrl(c.mcpUrl)) {
      const host = new URL(c.mcpUrl).hostname;
      if (!c.allowedHosts.includes(host)) {
        ctx.addIssue({ code: 'custom', path: ['allowedHosts'], message: `must include the mcpUrl host "${host}" or egress to the MCP is blocked` });
      }
    }
    const syslog = c.syslogTarget ? parseSyslogTarget(c.syslogTarget) : null;
    if (syslog?.ok && syslog.target.protocol === 'tls' && !c.syslogCaFile && c.deploymentMode === 'reseller') {
      ctx.addIssue({
        code: 'custom',
        path: ['syslogCaFile'],
        message: 'is required for a tls:// syslogTarget: the CA that signs the receiver certificate (/etc/ssl/certs/ca-certificates.crt for a public CA)',
      });
    }
    // Refused rather than ignored: a CA set for a target that no longer uses TLS means the
    // operator expects encryption that would silently be gone.
    if (c.syslogCaFile && !(syslog?.ok && syslog.target.protocol === 'tls')) {
      ctx.addIssue({
        code: 'custom',
        path: ['syslogCaFile'],
        message: 'is only used with a tls:// syslogTarget; a tcp:// target sends evidence unencrypted, so remove syslogCaFile to mean it',
      });
    }
    if (c.webhookCaFile && !c.rmmWebhookUrl) {
      ctx.addIssue({ code: 'custom', path: ['webhookCaFile'], message: 'is only used with rmmWebhookUrl' });
    }
    if (c.deploymentMode === 'reseller') {
      // The egress allowlist is built from allowedHosts: a sink host outside it could never be reached.
      if (c.rmmWebhookUrl && isHttpsUrl(c.rmmWebhookUrl) && !c.allowedHosts.includes(hostOf(c.rmmWebhookUrl))) {
        ctx.addIssue({ code: 'custom', path: ['allowedHosts'], message: `must include the rmmWebhookUrl host "${hostOf(c.rmmWebhookUrl)}" or egress to the webhook is blocked` });
      }
      if (syslog?.ok && !c.allowedHosts.includes(syslog.target.host)) {
        ctx.addIssue({ code: 'custom', path: ['allowedHosts'], message: `must include the syslogTarget host "${syslog.target.host}" or egress to syslog is blocked` });
      }
    }
    for (const list of ['trustedOrderKeys', 'mcpReceiptKeys'] as const) {
      const names = c[list].map((k) => k.split(':')[0]);
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup) ctx.addIssue({ code: 'custom', path: [list], message: `key name "${dup}" appears twice` });
    }
    // A threshold above the number of distinct keys could never be met: every such order would be refused.
    const distinct = new Set(c.trustedOrderKeys.map((k) => k.slice(k.indexOf(':') + 1))).size;
    for (const [type, n] of Object.entries(c.orderSignaturesRequired)) {
      if (n > distinct)
        ctx.addIssue({ code: 'custom', path: ['orderSignaturesRequired', type], message: `requires ${n} signers but trustedOrderKeys holds ${distinct} distinct key(s)` });
    }
    if ((c.closureSubstituters.length === 0) !== (c.closureTrustedPublicKeys.length === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['closureTrustedPublicKeys'],
        message: 'closureSubstituters and closureTrustedPublicKeys are set together: a cache without a trusted key (or a key without a cache) cannot serve a closure',
      });
    }
    for (const u of c.closureSubstituters) {
      const url = SubstituterSchema.safeParse(u).success ? new URL(u) : null;
      if (url?.protocol === 'https:' && !c.allowedHosts.includes(hostOf(u))) {
        ctx.addIssue({ code: 'custom', path: ['allowedHosts'], message: `must include the closureSubstituters host "${hostOf(u)}" or egress to the cache is blocked` });
      }
    }
  });

export type ConfigInput = z.input<typeof ConfigSchema>;
/** A loaded config: hostId is always resolved (defaults to the host name). */
export type Config = Omit<z.output<typeof ConfigSchema>, 'hostId'> & { hostId: string };

/**
 * A systemd unit name as the baseline and the healer's actions both take it: never starting with
 * a dash (it would read as an option), at most 256 characters. One pattern for both, so a unit
 * the baseline accepts is one the healer can act on and nothing else.
 */
const UNIT_NAME_RE = /^[A-Za-z0-9@:_\\][A-Za-z0-9@:._\\-]*\.(service|timer|socket|target|mount|path)$/;
export const UnitNameSchema = z.string().max(256).regex(UNIT_NAME_RE, 'must be a systemd unit name like sshd.service (not starting with a dash)');
const unitName = UnitNameSchema;

/** baseline.json: the desired state the checks compare against. */
export const BaselineSchema = z
  .object({
    version: z.literal(1),
    patching: z
      .object({
        /** Expected `configurationRevision` of the running system (nixos-version --json): the flake's git commit. */
        configurationRevision: z.string().min(1).max(128),
        /** Pinned flake reference the healer builds and activates to converge; its rev is configurationRevision. */
        flakeRef: PinnedFlakeRefSchema,
      })
      .strict()
      .superRefine((p, ctx) => {
        const ref = parsePinnedFlakeRef(p.flakeRef);
        if (ref.ok && ref.value.rev !== p.configurationRevision) {
          ctx.addIssue({ code: 'custom', path: ['configurationRevision'], message: 'must be the rev the flakeRef pins (the system a heal builds reports that commit)' });
        }
      }),
    services: z.object({ required: z.array(unitName).max(256) }).strict(),
    backup: z
      .object({
        unit: unitName,
        /** A file whose mtime is the last successful backup. */
        stampFile: absPath,
        maxAgeHours: z
          .number()
          .positive()
          .max(24 * 365),
      })
      .strict(),
    firewall: z.object({ rulesetHash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex>') }).strict(),
    encryption: z.object({ requiredMounts: z.array(absPath).max(64) }).strict(),
  })
  .strict();

export type Baseline = z.output<typeof BaselineSchema>;
