import { createHash } from 'node:crypto';
import { AgentError } from '../common/index.js';

export type NormalisedRuleset = { ok: true; text: string; tables: string[] } | { ok: false; reason: string };

/**
 * Split one line of `nft list ruleset` into tokens: words, and quoted strings kept whole.
 * A `#` outside a string starts a comment (`nft -a` prints handles as `# handle 4`).
 */
function tokenise(line: string): string[] | null {
  const tokens: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      current += c;
      if (c === '\\' && i + 1 < line.length) current += line[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      current += c;
      quoted = true;
    } else if (c === '#') {
      break;
    } else if (/\s/.test(c)) {
      if (current) tokens.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  if (quoted) return null;
  if (current) tokens.push(current);
  return tokens;
}

/** Drop what changes while the firewall does not: comments, packet/byte counts, quota use, element expiry. */
function stripVolatile(tokens: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if (t === 'comment' && next?.startsWith('"')) {
      i++;
    } else if (t === 'packets' && tokens[i + 2] === 'bytes') {
      i += 3;
    } else if (t === 'used' && next !== undefined && /^\d+$/.test(next)) {
      i += 2;
    } else if (t === 'expires' && next !== undefined) {
      i++;
    } else {
      out.push(t);
    }
  }
  return out;
}

function braceDelta(tokens: readonly string[]): number {
  let d = 0;
  for (const t of tokens) {
    if (t.startsWith('"')) continue;
    for (const c of t) d += c === '{' ? 1 : c === '}' ? -1 : 0;
  }
  return d;
}

/**
 * Elements of sets declared with `flags timeout` or `flags dynamic` are filled at run time (the
 * egress allowlist from DNS answers, meters from traffic): they are state, not policy.
 */
function dropRuntimeElements(lines: readonly string[][]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!((line[0] === 'set' || line[0] === 'map') && line.length === 3 && line[2] === '{')) {
      out.push(line);
      continue;
    }
    let depth = 1;
    let end = i + 1;
    while (end < lines.length && depth > 0) depth += braceDelta(lines[end++]!);
    const body = lines.slice(i + 1, end - 1);
    const runtime = body.some(
      (l) =>
        l[0] === 'flags' &&
        l
          .slice(1)
          .join('')
          .split(',')
          .some((f) => f === 'timeout' || f === 'dynamic'),
    );
    out.push(line);
    for (let j = 0; j < body.length; j++) {
      const l = body[j]!;
      if (runtime && l[0] === 'elements' && l[1] === '=') {
        let d = braceDelta(l);
        while (d > 0 && j + 1 < body.length) d += braceDelta(body[++j]!);
        continue;
      }
      out.push(l);
    }
    out.push(lines[end - 1]!);
    i = end - 1;
  }
  return out;
}

/**
 * Normalise `nft list ruleset` output so its hash changes only when the policy does: comments,
 * handles, counters, quota use and runtime set elements dropped, whitespace collapsed, tables in a
 * fixed order (their order carries no meaning; rule order inside a chain does and is kept).
 */
export function normaliseRuleset(text: string): NormalisedRuleset {
  const lines: string[][] = [];
  const raw = text.split('\n');
  for (let n = 0; n < raw.length; n++) {
    const tokens = tokenise(raw[n]!);
    if (tokens === null) return { ok: false, reason: `line ${n + 1}: unterminated string` };
    const kept = stripVolatile(tokens);
    if (kept.length) lines.push(kept);
  }
  const tables: string[][][] = [];
  let depth = 0;
  for (const line of dropRuntimeElements(lines)) {
    if (depth === 0) {
      if (!(line[0] === 'table' && line.length === 4 && /^(ip|ip6|inet|arp|bridge|netdev)$/.test(line[1]!) && line[3] === '{')) {
        return { ok: false, reason: `expected "table <family> <name> {", found "${line.join(' ').slice(0, 60)}"` };
      }
      tables.push([]);
    }
    depth += braceDelta(line);
    if (depth < 0) return { ok: false, reason: 'unbalanced "}"' };
    tables[tables.length - 1]!.push(line);
  }
  if (depth !== 0) return { ok: false, reason: 'unterminated block (missing "}")' };
  const blocks = tables.map((t) => t.map((l) => l.join(' ')).join('\n')).sort();
  return { ok: true, text: blocks.join('\n'), tables: tables.map((t) => `${t[0]![1]} ${t[0]![2]}`).sort() };
}

export function hashNormalised(normalised: string): string {
  return `sha256:${createHash('sha256').update(normalised, 'utf8').digest('hex')}`;
}

/** `sha256:<hex>` of the normalised ruleset, as baseline.firewall.rulesetHash expects. Throws on text that is not a ruleset. */
export function rulesetHash(text: string): string {
  const n = normaliseRuleset(text);
  if (!n.ok) throw new AgentError('ruleset_malformed', `not an nft ruleset: ${n.reason}`);
  return hashNormalised(n.text);
}
