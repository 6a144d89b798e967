import { describe, expect, it } from 'vitest';
import { failureKind, nextDeliveryHealth, type DeliveryHealth, type FlushOutcome } from '../../src/observe/index.js';

const T0 = 1_700_000_000_000;
const MIN = 60_000;

describe('failure kinds, from the reasons the sinks and the MCP client write', () => {
  it.each([
    ['webhook POST failed: connection to rmm.example.net:443 refused (ECONNREFUSED)', 'connection_refused'],
    ['connection to 10.0.0.5:443 refused (ECONNREFUSED)', 'connection_refused'],
    ['webhook POST failed: TLS to rmm.example.net:443 failed: server certificate is not signed by the CA in /run/x (UNABLE_TO_VERIFY_LEAF_SIGNATURE)', 'tls'],
    ['syslog: TLS to siem.example.net:6514 failed: server certificate has expired (CERT_HAS_EXPIRED)', 'tls'],
    ['webhook rmm.example.net answered 503: maintenance', 'http_503'],
    ['webhook rmm.example.net refused with 401: bad signature', 'http_401'],
    ['MCP mcp.example.net:443 answered 502 to POST /evidence/batch: bad gateway', 'http_502'],
    ['HTTP 422: schema mismatch', 'http_422'],
    ['MCP refused: duplicate seq', 'rejected'],
    ['cannot resolve mcp.example.net: ENOTFOUND', 'dns'],
    ['syslog: siem.example.net:514 unreachable (EHOSTUNREACH)', 'unreachable'],
    ['connecting to mcp.example.net:443 timed out after 10000 ms (UND_ERR_CONNECT_TIMEOUT)', 'timeout'],
    ['syslog: connection to tcp://10.0.0.9:514 was lost (ECONNRESET)', 'connection_lost'],
    ['something odd', 'other'],
  ])('%s -> %s', (reason, kind) => {
    expect(failureKind(reason)).toBe(kind);
  });
});

describe('delivery health lines', () => {
  const refused: FlushOutcome = { delivered: 0, error: 'connection to x:1 refused (ECONNREFUSED)', rejected: [], dead: 0 };
  const step = (prev: DeliveryHealth | null, outcome: FlushOutcome, at: number) => nextDeliveryHealth(prev, 'webhook', outcome, at, 15 * MIN);

  it('first failure, silence, a summary per interval, a new line for a new kind, one on recovery; nothing for an idle flush', () => {
    let s = step(null, refused, T0);
    expect(s.line?.msg).toBe('webhook delivery failing: connection to x:1 refused (ECONNREFUSED)');
    s = step(s.health, refused, T0 + MIN);
    expect(s.line).toBeNull();
    const idle = step(s.health, { delivered: 0, error: null, rejected: [], dead: 0 }, T0 + 2 * MIN);
    expect(idle).toEqual({ health: s.health, line: null });
    s = step(s.health, refused, T0 + 15 * MIN);
    expect(s.line?.msg).toBe('webhook delivery still failing after 15m (3 failed attempt(s), 2 since the last line): connection to x:1 refused (ECONNREFUSED)');
    s = step(s.health, { ...refused, error: 'webhook x answered 503: busy' }, T0 + 16 * MIN);
    expect(s.line).toMatchObject({ level: 'warn', fields: { kind: 'http_503', failures: 4 }, msg: 'webhook delivery failing: webhook x answered 503: busy' });
    s = step(s.health, { delivered: 3, error: null, rejected: [], dead: 0 }, T0 + 20 * MIN);
    expect(s.line).toMatchObject({ level: 'info', msg: 'webhook delivery recovered after 20m (4 failed attempt(s))' });
    expect(s.health).toMatchObject({ state: 'ok', kind: null, lastError: 'webhook x answered 503: busy', lastErrorAt: T0 + 16 * MIN, lastOkAt: T0 + 20 * MIN });
  });

  it('kinds that alternate are each logged once per interval, not at every switch', () => {
    const timeout: FlushOutcome = { ...refused, error: 'x:1 timed out (UND_ERR_CONNECT_TIMEOUT)' };
    const msgs: string[] = [];
    let s = step(null, refused, T0);
    msgs.push(s.line!.msg);
    for (let i = 1; i <= 8; i++) {
      s = step(s.health, i % 2 ? timeout : refused, T0 + i * MIN);
      if (s.line) msgs.push(s.line.msg);
    }
    expect(msgs).toEqual(['webhook delivery failing: connection to x:1 refused (ECONNREFUSED)', 'webhook delivery failing: x:1 timed out (UND_ERR_CONNECT_TIMEOUT)']);
    // An interval later each kind may be named again.
    s = step(s.health, timeout, T0 + 17 * MIN);
    expect(s.line?.msg).toBe('webhook delivery failing: x:1 timed out (UND_ERR_CONNECT_TIMEOUT)');
    s = step(s.health, timeout, T0 + 33 * MIN);
    expect(s.line?.msg).toBe('webhook delivery still failing after 33m (11 failed attempt(s), 1 since the last line): x:1 timed out (UND_ERR_CONNECT_TIMEOUT)');
  });

  it('a clock stepped back does not silence the summaries', () => {
    let s = step(null, refused, T0);
    s = step(s.health, refused, T0 - 20 * MIN);
    expect(s.line?.msg).toMatch(/^webhook delivery still failing after 20m/);
  });

  it('dead letters are an error line naming how many and where to look', () => {
    const s = step(null, { delivered: 2, error: null, rejected: ['webhook x refused with 401: no'], dead: 1 }, T0);
    expect(s.line).toMatchObject({ level: 'error', fields: { kind: 'http_401', deadLettered: 1 } });
    expect(s.line?.msg).toBe('webhook delivery failing: webhook x refused with 401: no; 1 bundle(s) dead-lettered, see compliance-agent dead-letters list');
  });
});
