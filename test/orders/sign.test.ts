import { describe, expect, it } from 'vitest';
import { AgentError } from '../../src/common/index.js';
import { prepareOrder, signOrder, verifyOrder, readOnlyOrderState } from '../../src/orders/index.js';
import { NOW, context, makeKey } from './fixtures.js';

const msp = makeKey('msp');

describe('prepareOrder / signOrder (MSP side)', () => {
  it('fills order_id, issued_at, expires_at (15 min) and the given sequence, and the agent accepts the result', () => {
    const order = prepareOrder(
      { site_id: 'clinic-001', host_id: 'appliance-1', policy_version: '1.0', type: 'heal', params: { checks: ['services'] } },
      { now: NOW, sequence: 42 },
    );
    expect(order.order_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(order.issued_at).toBe('2026-11-23T12:00:00Z');
    expect(order.expires_at).toBe('2026-11-23T12:15:00Z');
    expect(order.sequence).toBe(42);
    const d = verifyOrder(signOrder(order, msp.secret), context([msp.pub], { now: NOW + 1000 }), readOnlyOrderState(null));
    expect(d.decision).toBe('accepted');
  });

  it('honours a given ttl and keeps fields that are present', () => {
    const order = prepareOrder(
      { order_id: '6f1c2a8e-1d2b-4c3d-8e4f-5a6b7c8d9e0f', site_id: 's', host_id: '*', sequence: 3, policy_version: '2', type: 'rollback', params: {} },
      { now: NOW, ttlS: 60 },
    );
    expect(order).toMatchObject({ order_id: '6f1c2a8e-1d2b-4c3d-8e4f-5a6b7c8d9e0f', sequence: 3, expires_at: '2026-11-23T12:01:00Z' });
  });

  it('refuses what the agent would refuse, naming the field', () => {
    const attempt = () =>
      prepareOrder(
        { site_id: 'clinic-001', host_id: 'h', sequence: 1, policy_version: '1', type: 'apply_baseline', params: { revision: 'r', flakeRef: 'x && reboot' } },
        { now: NOW },
      );
    expect(attempt).toThrow(AgentError);
    try {
      attempt();
    } catch (e) {
      expect((e as AgentError).message).toContain('bad_params');
      expect((e as AgentError).details.join(' ')).toContain('params.flakeRef');
    }
    expect(() => prepareOrder({ site_id: 'clinic-001', host_id: 'h', sequence: 1, policy_version: '1', type: 'reboot', params: {} }, { now: NOW })).toThrow(/unknown_type/);
    // No sequence at all: refused, never derived from the clock.
    expect(() => prepareOrder({ site_id: 'clinic-001', host_id: 'h', policy_version: '1', type: 'rollback', params: {} }, { now: NOW })).toThrow(/no sequence/);
    expect(() => prepareOrder([], { now: NOW })).toThrow(/JSON object/);
  });
});
