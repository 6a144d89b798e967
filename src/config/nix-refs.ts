import * as z from 'zod';

/**
 * What Nix may be pointed at, shared by config.json, baseline.json, orders and heal requests, so
 * every layer accepts exactly the same references.
 *
 * A flake reference that root builds must name an immutable source: a git commit (`rev=` and 40
 * hex digits) of a remote repository reached over `git+https`, or a `github:`/`gitlab:`/
 * `sourcehut:` repository. Local (`path:`, `file:`, `git+file:`, a bare path), tarball and
 * registry references are refused, as is user info in a URL (a token there would reach the
 * journal, the evidence and the world-readable store).
 */

/** No shell metacharacters, whitespace or leading dash: the healer never uses a shell, but a reference an operator signed has no use for them. */
const FLAKE_REF_RE = /^[A-Za-z0-9./~][A-Za-z0-9._~:/?#@+=,%&-]*$/;
const FlakeRefSyntaxSchema = z.string().min(1).max(512).regex(FLAKE_REF_RE, 'must be a flake reference without shell metacharacters, whitespace or a leading dash');

const REV_RE = /^[0-9a-f]{40}$/;
/** A NixOS configuration name: the attribute under `nixosConfigurations`. */
const ATTR_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$/;
const SEGMENT_RE = /^[A-Za-z0-9_~][A-Za-z0-9._~-]{0,127}$/;
const FORGES = ['github', 'gitlab', 'sourcehut'] as const;
const ALLOWED_SCHEMES = 'git+https://, github:, gitlab: or sourcehut:';

export interface PinnedFlakeRef {
  /** The repository without query or fragment: `github:owner/repo`, `git+https://host/path`. */
  readonly source: string;
  /** The pinned git commit, 40 lower-case hex digits. */
  readonly rev: string;
  /** The `nixosConfigurations` attribute after `#`. */
  readonly attr: string;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function segmentsOk(path: string): boolean {
  return path.split('/').every((s) => SEGMENT_RE.test(s) && s !== '.' && s !== '..');
}

/** The repository part of a reference or an allowedFlakes prefix: scheme checked, no user info, no query. Messages never echo the input. */
function parseFlakeSource(text: string): Parsed<{ source: string; pathRev: string | null }> {
  if (text.startsWith('git+https://')) {
    let url: URL;
    try {
      url = new URL(text.slice('git+'.length));
    } catch {
      return { ok: false, message: 'is not a valid git+https:// URL' };
    }
    if (url.username || url.password || text.includes('@')) return { ok: false, message: 'must not carry user info (a user or token) in the URL: use nixAccessTokensFile' };
    if (url.search || url.hash) return { ok: false, message: 'must not carry a query or fragment here' };
    const path = url.pathname.replace(/^\//, '').replace(/\/$/, '');
    if (text.includes('%') || (path !== '' && !segmentsOk(path))) return { ok: false, message: 'has a path with empty, dot or encoded segments' };
    return { ok: true, value: { source: `git+https://${url.host.toLowerCase()}${path ? `/${path}` : ''}`, pathRev: null } };
  }
  const colon = text.indexOf(':');
  const scheme = colon > 0 ? text.slice(0, colon) : '';
  if (!(FORGES as readonly string[]).includes(scheme)) {
    return { ok: false, message: `must be ${ALLOWED_SCHEMES} (not path:, file:, git+file:, git+ssh:, a tarball, a local path or a registry name)` };
  }
  const path = text.slice(colon + 1).replace(/\/$/, '');
  if (text.includes('@')) return { ok: false, message: 'must not carry user info' };
  if (path === '' || !segmentsOk(path)) return { ok: false, message: `must be ${scheme}:owner[/repo[/<40 hex rev>]] with plain path segments` };
  const parts = path.split('/');
  if (parts.length > 3) return { ok: false, message: `must be ${scheme}:owner/repo or ${scheme}:owner/repo/<40 hex rev>` };
  if (parts.length === 3) {
    if (!REV_RE.test(parts[2]!)) return { ok: false, message: 'names a branch or tag in the path, which is not a pin: use rev=<40 hex>' };
    return { ok: true, value: { source: `${scheme}:${parts[0]}/${parts[1]}`, pathRev: parts[2]! } };
  }
  return { ok: true, value: { source: `${scheme}:${path}`, pathRev: null } };
}

/**
 * A pinned reference: `git+https://host/repo?rev=<40 hex>#name`, `github:owner/repo?rev=<40 hex>#name`
 * or `github:owner/repo/<40 hex>#name` (same for gitlab: and sourcehut:). Query keys other than
 * `rev` and `ref` are refused (`host=` would move a github: reference to another server).
 */
export function parsePinnedFlakeRef(ref: string): Parsed<PinnedFlakeRef> {
  if (!FLAKE_REF_RE.test(ref) || ref.length > 512) return { ok: false, message: 'must be a flake reference without shell metacharacters, whitespace or a leading dash' };
  const hash = ref.indexOf('#');
  if (hash < 0 || ref.indexOf('#', hash + 1) >= 0) return { ok: false, message: 'must name the configuration once after # (REF#name)' };
  const attr = ref.slice(hash + 1);
  if (!ATTR_RE.test(attr)) return { ok: false, message: 'must name a nixosConfigurations attribute after # (letters, digits, _ and -)' };
  const beforeHash = ref.slice(0, hash);
  const q = beforeHash.indexOf('?');
  const base = q < 0 ? beforeHash : beforeHash.slice(0, q);
  const query = q < 0 ? '' : beforeHash.slice(q + 1);
  const source = parseFlakeSource(base);
  if (!source.ok) return source;
  const params = new Map<string, string>();
  for (const pair of query === '' ? [] : query.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key !== 'rev' && key !== 'ref') return { ok: false, message: 'may only carry the query parameters rev and ref' };
    if (params.has(key)) return { ok: false, message: `carries ${key} twice` };
    params.set(key, eq < 0 ? '' : pair.slice(eq + 1));
  }
  const queryRev = params.get('rev');
  if (queryRev !== undefined && source.value.pathRev !== null) return { ok: false, message: 'pins a revision twice' };
  const rev = queryRev ?? source.value.pathRev;
  if (rev === null || rev === undefined) return { ok: false, message: 'must pin an immutable revision (rev=<40 hex>); a branch such as ref=main is not a pin' };
  if (!REV_RE.test(rev)) return { ok: false, message: 'must pin rev=<40 lower-case hex digits>' };
  const ref_ = params.get('ref');
  if (ref_ !== undefined && !/^[A-Za-z0-9._/-]{1,128}$/.test(ref_)) return { ok: false, message: 'has a ref that is not a branch or tag name' };
  return { ok: true, value: { source: source.value.source, rev, attr } };
}

/** An allowedFlakes prefix (`github:msp`, `github:msp/sites`, `git+https://git.msp.example/sites`), normalised. */
function parseFlakePrefix(prefix: string): Parsed<string> {
  if (!FLAKE_REF_RE.test(prefix) || prefix.length > 512) return { ok: false, message: 'must be a flake URL prefix without shell metacharacters or whitespace' };
  const s = parseFlakeSource(prefix);
  if (!s.ok) return s;
  if (s.value.pathRev !== null) return { ok: false, message: 'must name a repository or an owner, not a revision' };
  return { ok: true, value: s.value.source };
}

/** Whether a source lies under one of the prefixes, on a path boundary: `github:msp/site` does not cover `github:msp/site-evil`. */
export function flakeSourceAllowed(source: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => source === p || source.startsWith(`${p}/`));
}

function refine<T>(parse: (s: string) => Parsed<T>) {
  return (s: string, ctx: z.RefinementCtx): void => {
    const r = parse(s);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
  };
}

/** A pinned flake reference (see parsePinnedFlakeRef); a syntax error is reported once. */
export const PinnedFlakeRefSchema = FlakeRefSyntaxSchema.superRefine((s, ctx) => {
  if (FLAKE_REF_RE.test(s)) refine(parsePinnedFlakeRef)(s, ctx);
});
export const FlakePrefixSchema = z.string().min(1).max(512).superRefine(refine(parseFlakePrefix));
export const RevisionSchema = z.string().regex(REV_RE, 'must be a git commit: 40 lower-case hex digits');

/** Nix's base32 alphabet: no e, o, u, t. */
export const STORE_PATH_RE = /^\/nix\/store\/[0-9abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]{0,210}$/;
/** A store path that is not a derivation: realising it substitutes, never builds. */
export const StorePathSchema = z
  .string()
  .regex(STORE_PATH_RE, 'must be a /nix/store path')
  .refine((p) => !p.endsWith('.drv'), 'must be an output path, not a derivation');

/** A Nix binary cache: `https://` (its host must be in allowedHosts) or a local `file://` directory. */
export const SubstituterSchema = z
  .string()
  .max(512)
  .refine((u) => {
    try {
      const url = new URL(u);
      return (url.protocol === 'https:' || url.protocol === 'file:') && !url.username && !url.password && !url.search && !url.hash && !/\s/.test(u);
    } catch {
      return false;
    }
  }, 'must be an https:// or file:// binary cache URL without user info, query or fragment');
