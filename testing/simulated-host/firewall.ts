import { fail, ok, type SimReply } from './reply.js';

/**
 * What `nft list ruleset` prints on a NixOS appliance with `networking.nftables.enable` and the
 * agent's egress table: NixOS's nixos-fw table (as its firewall module renders it) plus an
 * allowlist table whose sets the egress refresh fills at run time.
 */
export function sampleRuleset(opts: { tcpPorts?: readonly number[] } = {}): string {
  const ports = opts.tcpPorts ?? [22, 443];
  return `table inet nixos-fw {
\tset temp-ports {
\t\ttype inet_proto . inet_service
\t\tflags interval
\t\tcomment "Temporarily opened ports"
\t}

\tchain rpfilter {
\t\ttype filter hook prerouting priority mangle + 10; policy drop;
\t\tmeta nfproto ipv4 udp sport . udp dport { 68 . 67, 67 . 68 } accept comment "DHCPv4 client/server"
\t\tfib saddr . mark . iif oif exists accept
\t\tjump rpfilter-allow
\t}

\tchain rpfilter-allow {
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname "lo" accept comment "trusted interfaces"
\t\tct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }
\t\ttcp flags syn / fin,syn,rst,ack log prefix "refused connection: " level info
\t}

\tchain input-allow {
\t\ttcp dport { ${ports.join(', ')} } accept
\t\ticmp type echo-request accept comment "allow ping"
\t\ticmpv6 type != { nd-redirect, 139 } accept comment "Accept all ICMPv6 messages except redirects and node information queries (type 139).  See RFC 4890, section 4.4."
\t\tip6 daddr fe80::/64 udp dport 546 accept comment "DHCPv6 client"
\t}
}
table inet compliance-agent-egress {
\tset allowed_v4 {
\t\ttype ipv4_addr
\t\tflags timeout
\t\telements = { 203.0.113.10 timeout 5m expires 4m12s604ms }
\t}

\tset allowed_v6 {
\t\ttype ipv6_addr
\t\tflags timeout
\t}

\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t\toif "lo" accept
\t\tct state established,related accept
\t\tip daddr @allowed_v4 tcp dport 443 counter packets 1284 bytes 190233 accept
\t\tip6 daddr @allowed_v6 tcp dport 443 counter packets 0 bytes 0 accept
\t\tudp dport { 53, 123 } accept
\t\tcounter packets 17 bytes 1020 log prefix "compliance-agent egress drop: " drop
\t}
}
`;
}

/** Runtime nftables state and `nft list ruleset`; counters move between listings, as on a live host. */
export class Firewall {
  private listings = 0;

  constructor(public ruleset: string) {}

  nft(args: readonly string[]): SimReply {
    if (args.length === 2 && args[0] === 'list' && args[1] === 'ruleset') {
      this.listings++;
      const n = this.listings;
      const live = this.ruleset
        .replace(/counter packets (\d+) bytes (\d+)/g, (_, p: string, b: string) => `counter packets ${Number(p) + n * 3} bytes ${Number(b) + n * 180}`)
        .replace(/expires (\d+)m(\d+)s(\d+)ms/g, (_, m: string, s: string, ms: string) => `expires ${m}m${Math.max(0, Number(s) - n) % 60}s${ms}ms`);
      return ok(live, 30);
    }
    return fail(1, `Error: syntax error, unexpected end of file\n${args.join(' ')}\n${'^'.repeat(Math.max(1, args.join(' ').length))}\n`);
  }
}
