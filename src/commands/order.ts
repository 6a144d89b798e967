import { existsSync, readFileSync } from 'node:fs';
import { parseJsonText, errnoCode } from '../common/index.js';
import { loadSecretKeyFile } from '../crypto/index.js';
import { loadBaseline, type Baseline } from '../config/index.js';
import {
  DEFAULT_ORDER_TTL_S,
  cosignOrder,
  prepareOrder,
  readOnlyOrderState,
  signOrder,
  ttlProblem,
  verifyContextFromConfig,
  verifyOrder,
  withNextSequence,
  type OrderDecision,
} from '../orders/index.js';
import { openStateDb, stateLayout, type StateDb } from '../state/index.js';
import { parseCommandArgs, parseWithConfig } from './config-arg.js';
import { EXIT, type Command } from './command.js';
import { printError } from './output.js';

const USAGE = [
  'compliance-agent order sign --key KEY (--sequence-file PATH | --sequence N) [--ttl SECONDS] [--execute-within DURATION] ORDER.json|-',
  '  fills order_id, issued_at, expires_at (issued_at + ttl, default 900, at most 86400) and sequence:',
  "  the next one from the site's sequence file (locked, updated atomically), or N;",
  "  --execute-within: execute_by = issued_at + DURATION (e.g. 36h, 7d; at most the appliance's maxDeferral),",
  '    how long a disruptive action may wait for the maintenance window once the healer has the order;',
  '  validates the order as the agent will, prints the signed DSSE envelope',
  'compliance-agent order sign --key KEY --cosign ENVELOPE.json|-',
  "  adds KEY's signature to an envelope signed elsewhere (orderSignaturesRequired > 1); prints it",
  'compliance-agent order verify --config CONFIG [--json] ENVELOPE.json|-',
  '  prints the decision this agent would take and why; exit 0 accepted, 1 rejected; changes no state',
].join('\n');

/** `90`, `90s`, `45m`, `36h`, `7d` in seconds; null when it is none of those or zero. */
function parseDuration(text: string): number | null {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text);
  if (!m) return null;
  const s = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return s > 0 ? s : null;
}

function readInput(path: string): string {
  return path === '-' ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8');
}

async function sign(args: string[]): Promise<number> {
  const p = parseCommandArgs(args, USAGE, {
    key: { type: 'string' },
    ttl: { type: 'string' },
    'execute-within': { type: 'string' },
    cosign: { type: 'string' },
    sequence: { type: 'string' },
    'sequence-file': { type: 'string' },
  });
  if (!p.ok) return p.code;
  const { parsed } = p;
  const v = parsed.values;
  const cosign = v.cosign;
  const [positional, ...extra] = parsed.positionals;
  const file = cosign ?? positional;
  const within = v['execute-within'] === undefined ? undefined : parseDuration(v['execute-within']);
  // A co-signer adds a signature to what was signed; it sets nothing (no ttl, no execute_by, no sequence).
  const signsNew = v.ttl !== undefined || within !== undefined || v.sequence !== undefined || v['sequence-file'] !== undefined;
  if (!file || extra.length || (cosign !== undefined && (positional !== undefined || signsNew)) || !v.key || within === null) {
    printError(`usage: ${USAGE}`);
    return EXIT.usage;
  }
  const ttl = v.ttl === undefined ? undefined : Number(v.ttl);
  const ttlWhy = v.ttl === undefined ? null : /^\d+$/.test(v.ttl) ? ttlProblem(ttl!) : 'must be a whole number of seconds';
  if (ttlWhy) {
    printError(`--ttl ${v.ttl}: ${ttlWhy}`);
    return EXIT.usage;
  }
  if (v.sequence !== undefined && v['sequence-file'] !== undefined) {
    printError('--sequence and --sequence-file: give one, not both');
    return EXIT.usage;
  }
  const explicit = v.sequence === undefined ? undefined : Number(v.sequence);
  if (v.sequence !== undefined && !(/^\d+$/.test(v.sequence) && Number.isSafeInteger(explicit))) {
    printError(`--sequence ${v.sequence}: must be a non-negative integer`);
    return EXIT.usage;
  }
  try {
    let text: string;
    try {
      text = readInput(file);
    } catch (e) {
      printError(`${file}: cannot read (${errnoCode(e, 'error')})`);
      return EXIT.failed;
    }
    const draft = parseJsonText(text);
    if (!draft.ok) {
      printError(`${file}: ${draft.message}`);
      return EXIT.failed;
    }
    if (cosign !== undefined) {
      const key = loadSecretKeyFile(v.key);
      const { envelope, order } = cosignOrder(draft.value, key);
      // What is being co-signed, so the second signer checks it rather than signing blind.
      const executeBy = order.execute_by ? `, execute by ${order.execute_by}` : '';
      process.stderr.write(
        `co-signed by ${key.keyId}: ${order.type} order ${order.order_id} for ${order.site_id}/${order.host_id} ${JSON.stringify(order.params)}, expires ${order.expires_at}${executeBy}; ${envelope.signatures.length} signature(s)\n`,
      );
      process.stdout.write(JSON.stringify(envelope, null, 2) + '\n');
      return EXIT.ok;
    }
    const inDraft = typeof draft.value === 'object' && draft.value !== null && 'sequence' in draft.value;
    if (!inDraft && explicit === undefined && v['sequence-file'] === undefined) {
      printError(
        "order sign needs a sequence: --sequence-file PATH (the site's sequence state the MSP keeps, one file per site) or --sequence N; an appliance refuses an order whose sequence is not above the last it accepted",
      );
      return EXIT.usage;
    }
    if (inDraft && (explicit !== undefined || v['sequence-file'] !== undefined)) {
      printError(`${file}: the order already has a sequence; drop it there or drop --sequence/--sequence-file`);
      return EXIT.usage;
    }
    const key = loadSecretKeyFile(v.key);
    const signWith = (sequence: number | undefined) =>
      signOrder(
        prepareOrder(draft.value, {
          now: Date.now(),
          ...(ttl === undefined ? {} : { ttlS: ttl }),
          ...(within === undefined ? {} : { executeWithinS: within }),
          ...(sequence === undefined ? {} : { sequence }),
        }),
        key,
      );
    const envelope = v['sequence-file'] !== undefined ? withNextSequence(v['sequence-file'], signWith) : signWith(explicit);
    if (ttl !== undefined && ttl > DEFAULT_ORDER_TTL_S)
      process.stderr.write(`note: appliances refuse orders living longer than their orderTtl (default ${DEFAULT_ORDER_TTL_S} s)\n`);
    process.stdout.write(JSON.stringify(envelope, null, 2) + '\n');
    return EXIT.ok;
  } catch (e) {
    printError(e);
    return EXIT.failed;
  }
}

function describe(d: OrderDecision): string {
  if (d.decision === 'accepted') {
    return `accepted: ${d.order.type} order ${d.order.order_id} (sequence ${d.order.sequence}, signed by ${d.signers.join(', ')}, expires ${d.order.expires_at})`;
  }
  return `rejected: ${d.reason}: ${d.message}`;
}

async function verify(args: string[]): Promise<number> {
  const p = parseWithConfig(args, USAGE, { json: { type: 'boolean' } });
  if (!p.ok) return p.code;
  const [file, ...extra] = p.positionals;
  if (!file || extra.length) {
    printError(`usage: ${USAGE}`);
    return EXIT.usage;
  }
  let text: string;
  try {
    text = readInput(file);
  } catch (e) {
    printError(`${file}: cannot read (${errnoCode(e, 'error')})`);
    return EXIT.usage;
  }
  const dbPath = stateLayout(p.config.stateDir).db;
  let db: StateDb | null = null;
  let note: string | null = null;
  if (existsSync(dbPath)) {
    try {
      db = openStateDb(dbPath, { readonly: true });
    } catch (e) {
      note = `state database not readable (${(e as Error).message}); replay and sequence not checked`;
    }
  } else {
    note = `no state database at ${dbPath}; replay and sequence not checked`;
  }
  // allowedFlakes defaults to the baseline's repository: read it when it is there to read.
  let baseline: Baseline | undefined;
  try {
    baseline = loadBaseline(p.config.baselinePath);
  } catch {
    if (p.config.allowedFlakes.length === 0)
      note = [note, `baseline ${p.config.baselinePath} not readable; allowedFlakes is empty, so no apply_baseline flake is allowed`].filter(Boolean).join('; ');
  }
  try {
    const decision = verifyOrder(text, verifyContextFromConfig(p.config, Date.now(), baseline), readOnlyOrderState(db));
    if (p.values.json) {
      const out =
        decision.decision === 'accepted'
          ? {
              decision: 'accepted',
              order_id: decision.order.order_id,
              type: decision.order.type,
              sequence: decision.order.sequence,
              keyid: decision.keyid,
              signers: decision.signers,
              note,
            }
          : { decision: 'rejected', reason: decision.reason, message: decision.message, order_id: decision.orderId, note };
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else {
      if (note) process.stderr.write(`note: ${note}\n`);
      process.stdout.write(describe(decision) + '\n');
    }
    return decision.decision === 'accepted' ? EXIT.ok : EXIT.failed;
  } catch (e) {
    printError(e);
    return EXIT.usage;
  } finally {
    db?.close();
  }
}

export const orderCommand: Command = {
  name: 'order',
  summary: 'MSP side: sign or co-sign an order (order sign) or check what this agent would decide about one (order verify)',
  usage: USAGE,
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === 'sign') return sign(rest);
    if (sub === 'verify') return verify(rest);
    printError(`usage: ${USAGE}`);
    return EXIT.usage;
  },
};
