import type { SystemFacts } from '../checks/index.js';
import type { Config } from '../config/index.js';
import type { EvidenceDraft } from '../evidence/index.js';
import {
  markActionSigned,
  markAlerted,
  unalertedDeadLetters,
  unsignedOperatorActions,
  type DeadLetterDetail,
  type Destination,
  type OperatorAction,
  type OperatorIdentity,
} from '../queue/index.js';
import type { StateDb } from '../state/index.js';
import { makeDraft } from './drafts.js';

/** Evidence about evidence delivery: dead-letter alerts and operator actions on dead letters. */
const DELIVERY_CHECK = 'delivery';
const CONTROLS = ['HIPAA 164.312(b)', 'SOC 2 CC7.2'];
/** Dead letters listed in one alert; the count says how many there were in all. */
const MAX_LISTED = 50;

export interface DeadLetterAlert {
  readonly draft: EvidenceDraft;
  /** Where the alert goes: every destination in use except the one that gave up. */
  readonly to: readonly Destination[];
}

/**
 * One alert bundle per destination that dead-lettered bundles since the last alert. Two guards
 * against alert loops: an alert about X is never queued for X, and a dead-lettered bundle that is
 * itself delivery evidence is marked alerted without raising another alert (it shows in `status`
 * and the metrics all the same). `record` marks them all; run it in the transaction that chains
 * the alerts.
 */
export function deadLetterAlerts(
  db: StateDb,
  config: Config,
  facts: SystemFacts,
  destinations: readonly Destination[],
  now: number,
): { alerts: DeadLetterAlert[]; record: () => void } {
  const found = unalertedDeadLetters(db);
  const byDestination = new Map<Destination, DeadLetterDetail[]>();
  for (const d of found) {
    if (d.check === DELIVERY_CHECK) continue;
    byDestination.set(d.destination, [...(byDestination.get(d.destination) ?? []), d]);
  }
  const alerts = [...byDestination].map(([destination, dead]): DeadLetterAlert => {
    const last = dead[dead.length - 1]!;
    return {
      to: destinations.filter((d) => d !== destination),
      draft: makeDraft(config, facts, {
        check: DELIVERY_CHECK,
        outcome: 'failed',
        startedAt: now,
        endedAt: now,
        controls: CONTROLS,
        preState: {
          event: 'dead_lettered',
          destination,
          count: dead.length,
          dead_letters: dead.slice(0, MAX_LISTED).map((d) => ({ outbox_id: d.id, bundle_id: d.bundleId, seq: d.seq, check: d.check, attempts: d.attempts, reason: d.reason })),
        },
        reason: `${dead.length} evidence bundle(s) for ${destination} were dead-lettered (delivery given up): ${last.reason}. List them with compliance-agent dead-letters list; replay them once the cause is fixed`,
      }),
    };
  });
  return {
    alerts,
    record: () =>
      markAlerted(
        db,
        found.map((d) => d.id),
      ),
  };
}

function describeOperator(o: OperatorIdentity): string {
  const sudo = o.sudoUser === null ? '' : ` (sudo from ${o.sudoUser}${o.sudoUid === null ? '' : `, uid ${o.sudoUid}`})`;
  return `${o.user} (uid ${o.uid})${sudo}`;
}

function actionDraft(config: Config, facts: SystemFacts, a: OperatorAction, now: number): EvidenceDraft {
  const destinations = [...new Set(a.items.map((i) => i.destination))];
  const what = a.action === 'replay' ? 're-queued for delivery' : 'discarded (they will never be delivered there)';
  return makeDraft(config, facts, {
    check: DELIVERY_CHECK,
    // A discard loses evidence at a destination for good: an auditor must see it as a failure.
    outcome: a.action === 'replay' ? 'healed' : 'failed',
    startedAt: now,
    endedAt: now,
    controls: CONTROLS,
    preState: {
      event: `dead_letters_${a.action}`,
      requested_at: new Date(a.requestedAt).toISOString(),
      operator: { user: a.operator.user, uid: a.operator.uid, sudo_user: a.operator.sudoUser, sudo_uid: a.operator.sudoUid },
      operator_reason: a.reason,
      count: a.items.length,
      items: a.items.map((i) => ({ outbox_id: i.id, destination: i.destination, bundle_id: i.bundleId, dead_reason: i.reason })),
    },
    actions: [{ command: 'compliance-agent', args: ['dead-letters', a.action], status: 'ok', exit_code: 0, duration_ms: 0 }],
    reason: `${describeOperator(a.operator)} ${a.action === 'replay' ? 'replayed' : 'discarded'} ${a.items.length} dead-lettered bundle(s) for ${destinations.join(', ')}: ${what}${a.reason ? `; reason given: ${a.reason}` : '; no reason given'}`,
  });
}

/**
 * Signed evidence for every operator action the `dead-letters` command recorded (it cannot sign:
 * the signing key is the agent's). `record` links each action to its bundle; run it in the
 * transaction that chains them, so an action is recorded exactly once.
 */
export function operatorActionEvidence(db: StateDb, config: Config, facts: SystemFacts, now: number): { drafts: EvidenceDraft[]; record: () => void } {
  const actions = unsignedOperatorActions(db);
  const drafts = actions.map((a) => actionDraft(config, facts, a, now));
  return { drafts, record: () => actions.forEach((a, i) => markActionSigned(db, a.id, drafts[i]!.bundle_id)) };
}
