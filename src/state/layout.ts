import { join } from 'node:path';

/**
 * Every file and directory the agent keeps in its state directory (config.stateDir), named once.
 * The NixOS module names some of them too (the unit's ExecStopPost= writes previous-exit):
 * test/nix/state-layout.test.ts holds the two to the same names.
 */
export interface StateLayout {
  readonly root: string;
  /** The SQLite state database: queue, evidence chain, orders, identity lifecycle. */
  readonly db: string;
  /** One signed evidence bundle per file, exported after each cycle and pruned with the queue. */
  readonly evidence: string;
  /** The Prometheus textfile when config.metricsFile is null (readable by the agent's user only). */
  readonly metrics: string;
  /**
   * How the agent's previous run ended, one line the unit's ExecStopPost= writes from systemd's
   * $SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS (systemd passes nothing of it to the next start).
   */
  readonly previousExit: string;
}

export function stateLayout(stateDir: string): StateLayout {
  return {
    root: stateDir,
    db: join(stateDir, 'state.db'),
    evidence: join(stateDir, 'evidence'),
    metrics: join(stateDir, 'metrics.prom'),
    previousExit: join(stateDir, 'previous-exit'),
  };
}

/**
 * The root healer's tree (config.healDir), owned by root and apart from the agent's state
 * directory. The NixOS module creates it with systemd-tmpfiles (modules/lib/config.nix), with
 * the same names.
 */
export interface HealLayout {
  readonly root: string;
  /** root 0700: the healer's own database; the agent cannot even list it. */
  readonly state: string;
  /** The healer's database, in state/. */
  readonly healerDb: string;
  /**
   * root:<agent group> 1770: the drop box. The agent creates its requests here and, the directory
   * being sticky, can remove or rename only its own entries. Root reads them without following
   * links and never removes or renames anything here.
   */
  readonly requests: string;
  /** root:<agent group> 0750: results root writes (0640) for the agent to read. */
  readonly results: string;
}

export function healLayout(healDir: string): HealLayout {
  const state = join(healDir, 'state');
  return { root: healDir, state, healerDb: join(state, 'healer.db'), requests: join(healDir, 'requests'), results: join(healDir, 'results') };
}
