import { existsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { describeError } from '../common/index.js';
import { applyOperatorAction, DESTINATIONS, hasDeadLetterBookkeeping, listDeadLetters, type DeadLetterSelection, type Destination, type OperatorIdentity } from '../queue/index.js';
import { openStateDb, stateLayout } from '../state/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';

const USAGE = [
  'compliance-agent dead-letters list --config C [--destination D] [--json]',
  'compliance-agent dead-letters replay --config C (--id N [--id N ...] | --all) [--destination D] [--reason TEXT]',
  'compliance-agent dead-letters discard --config C (--id N [--id N ...] | --all) [--destination D] [--reason TEXT]',
].join('\n');

const MAX_REASON_CHARS = 500;

/** Who runs this, as the OS says; sudo's variables are recorded as what they are, a claim. */
function operator(): OperatorIdentity {
  const uid = process.getuid?.() ?? -1;
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid-${uid}`;
  }
  const sudoUid = process.env.SUDO_UID && /^\d+$/.test(process.env.SUDO_UID) ? Number(process.env.SUDO_UID) : null;
  return { user, uid, sudoUser: process.env.SUDO_USER || null, sudoUid };
}

function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

function parseIds(raw: unknown): number[] | null | 'bad' {
  if (raw === undefined) return null;
  const ids = (raw as string[]).map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  return ids.some((n) => !Number.isSafeInteger(n) || n < 1) ? 'bad' : ids;
}

export const deadLettersCommand: Command = {
  name: 'dead-letters',
  summary: 'list, replay (re-queue after fixing the cause) or discard dead-lettered evidence deliveries; each action becomes signed evidence',
  usage: USAGE,
  async run(args) {
    const p = parseWithConfig(args, USAGE, {
      destination: { type: 'string' },
      id: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      reason: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (!p.ok) return p.code;
    const [verb, ...extra] = p.positionals;
    const usage = (message: string): number => {
      printError(`${message}\nusage:\n${USAGE}`);
      return EXIT.usage;
    };
    if (verb !== 'list' && verb !== 'replay' && verb !== 'discard') return usage(verb ? `unknown action "${verb}"` : 'say list, replay or discard');
    if (extra.length > 0) return usage(`unexpected argument "${extra[0]}"`);
    const destination = p.values.destination as string | undefined;
    if (destination !== undefined && !DESTINATIONS.includes(destination as Destination)) return usage(`--destination must be one of ${DESTINATIONS.join(', ')}`);
    const ids = parseIds(p.values.id);
    if (ids === 'bad') return usage('--id takes the positive numbers dead-letters list shows');
    // One line of plain text: it goes into evidence, the RMM's payload and syslog.
    const reason =
      typeof p.values.reason === 'string'
        ? p.values.reason
            .replace(/\s+/g, ' ')
            .replace(/\p{Cc}/gu, '')
            .trim()
        : null;
    if (reason !== null && (reason.length === 0 || reason.length > MAX_REASON_CHARS)) return usage(`--reason must be 1 to ${MAX_REASON_CHARS} characters`);
    const selection: DeadLetterSelection = { ...(destination ? { destination: destination as Destination } : {}), ...(ids ? { ids } : {}) };

    const path = stateLayout(p.config.stateDir).db;
    if (!existsSync(path)) {
      printError(`${path}: no state yet (the agent has not run)`);
      return EXIT.failed;
    }
    if (verb === 'list') {
      if (ids || p.values.all || reason !== null) return usage('list takes only --destination and --json');
      const db = openStateDb(path, { readonly: true });
      try {
        if (!hasDeadLetterBookkeeping(db)) {
          printError(`${path}: written by an older agent; start this version once (it upgrades the database), then list again`);
          return EXIT.failed;
        }
        const dead = listDeadLetters(db, selection);
        if (p.values.json) process.stdout.write(JSON.stringify(dead, null, 2) + '\n');
        else if (dead.length === 0) process.stdout.write('no dead letters\n');
        else {
          for (const d of dead) {
            const bundle = d.check === null ? d.bundleId : `${d.bundleId} (seq ${d.seq}, ${d.check})`;
            process.stdout.write(`#${d.id} ${d.destination} ${bundle} dead since ${iso(d.deadAt)} after ${d.attempts} attempt(s): ${d.reason}\n`);
          }
        }
        return EXIT.ok;
      } finally {
        db.close();
      }
    }

    if (p.values.json) return usage('--json is for list');
    if (!ids === !p.values.all) return usage(`${verb} needs --id N (repeatable) or --all`);
    // The state database belongs to the agent's user: run as another (root) and SQLite would
    // leave journal files the agent cannot write.
    const owner = statSync(path).uid;
    if (process.getuid && process.getuid() !== owner) {
      printError(`${path} belongs to uid ${owner}: run this as that user (e.g. sudo -u compliance-agent compliance-agent dead-letters ${verb} ...)`);
      return EXIT.failed;
    }
    const db = openStateDb(path);
    try {
      const done = applyOperatorAction(db, verb, selection, reason, operator(), Date.now());
      const destinations = [...new Set(done.items.map((i) => i.destination))].join(', ');
      process.stdout.write(
        `${verb === 'replay' ? 'replayed' : 'discarded'} ${done.items.length} dead letter(s) for ${destinations} (#${done.items.map((i) => i.id).join(', #')})` +
          `${verb === 'replay' ? '; they are delivered in their original order at the next flush' : ''}.\n` +
          'The running agent records this action as signed evidence at its next cycle; compliance-agent status shows it until then.\n',
      );
      return EXIT.ok;
    } catch (e) {
      printError(`error: ${describeError(e)}`);
      return EXIT.failed;
    } finally {
      db.close();
    }
  },
};
