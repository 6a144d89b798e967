import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECK_NAMES } from '../../src/checks/index.js';
import { BaselineSchema, ConfigSchema } from '../../src/config/schema.js';
import { loadBaseline, loadConfig } from '../../src/config/index.js';
import { EVIDENCE_PAYLOAD_TYPE, ORDER_PAYLOAD_TYPE } from '../../src/crypto/index.js';
import { EvidenceBundleSchema, OUTCOMES } from '../../src/evidence/bundle.js';
import { ORDER_TYPES, REJECT_REASONS } from '../../src/orders/index.js';

// The contracts in docs/ name everything the code accepts or emits, so they cannot silently fall
// behind it: a new field, reason, outcome or option fails here until it is documented.

const doc = (name: string) => readFileSync(join(import.meta.dirname, '..', '..', 'docs', name), 'utf8');
/** Names written as `code` in the document. */
const codeSpans = (text: string) => new Set([...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));

describe('docs/ covers the code', () => {
  it('orders.md: both payload types, every order type, check name and rejection reason', () => {
    const spans = codeSpans(doc('orders.md'));
    for (const name of [ORDER_PAYLOAD_TYPE, EVIDENCE_PAYLOAD_TYPE, ...ORDER_TYPES, ...CHECK_NAMES, ...REJECT_REASONS]) expect(spans, name).toContain(name);
  });

  it('mcp-api.md: every order type and both payload types it relays', () => {
    const spans = codeSpans(doc('mcp-api.md'));
    for (const name of [ORDER_PAYLOAD_TYPE, EVIDENCE_PAYLOAD_TYPE, ...ORDER_TYPES]) expect(spans, name).toContain(name);
  });

  it('evidence.md: every bundle field and outcome', () => {
    const spans = codeSpans(doc('evidence.md'));
    const fields = Object.keys(EvidenceBundleSchema.shape).filter((f) => !spans.has(f));
    // Table rows may name two fields at once (`timestamp_start`, `timestamp_end`): each is its own span.
    expect(fields).toEqual([]);
    for (const o of OUTCOMES) expect(spans, o).toContain(o);
    expect(spans).toContain(EVIDENCE_PAYLOAD_TYPE);
  });

  it('evidence.md: every `check` value the code emits besides the check names (alerts, orders, identity, chain)', () => {
    const spans = codeSpans(doc('evidence.md'));
    const emitted = new Set<string>();
    const src = join(import.meta.dirname, '..', '..', 'src');
    for (const f of readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(src, f), 'utf8');
      // A literal in a bundle spec (`check: 'mcp'`) or a named constant (`DELIVERY_CHECK = 'delivery'`).
      for (const m of text.matchAll(/\bcheck: '([a-z_]+)'|\b[A-Z_]*_CHECK = '([a-z_]+)'/g)) emitted.add(m[1] ?? m[2]!);
    }
    expect([...emitted].length).toBeGreaterThan(5);
    expect([...emitted].filter((c) => !spans.has(c))).toEqual([]);
  });

  it('config.md: every config.json key and every baseline.json key', () => {
    const spans = codeSpans(doc('config.md'));
    const configKeys = Object.keys(ConfigSchema.shape);
    expect(configKeys.length).toBeGreaterThan(20);
    expect(configKeys.filter((k) => !spans.has(k))).toEqual([]);
    const baseline = BaselineSchema.shape;
    const baselineKeys = Object.entries(baseline).flatMap(([k, v]) => {
      const shape = (v as { shape?: Record<string, unknown> }).shape;
      return shape ? Object.keys(shape).map((sub) => `${k}.${sub}`) : [k];
    });
    expect(baselineKeys.filter((k) => !spans.has(k))).toEqual([]);
  });
});

describe('examples/', () => {
  it("config.json loads with the agent's own loader, for hostId appliance-1 (the reference MCP's default CN), in direct mode", () => {
    const examples = join(import.meta.dirname, '..', '..', 'examples');
    const config = loadConfig(join(examples, 'config.json'));
    expect([config.hostId, config.deploymentMode, config.baselinePath]).toEqual(['appliance-1', 'direct', '/tmp/compliance-agent-example/baseline.json']);
    expect(loadBaseline(join(examples, 'direct-baseline.json')).version).toBe(1);
  });
});
