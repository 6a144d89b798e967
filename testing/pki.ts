import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

/**
 * A test/demo PKI made with the openssl CLI: one CA for the MCP and its agents, a server cert,
 * a client cert (CN = host id, clientAuth), a rogue CA with its own server and client certs for
 * wrong-CA tests, and expired server/client certs. EC P-256 keys, PKCS#8 PEM, mode 0600.
 */
export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly rogueCaCert: string;
  readonly rogueServerCert: string;
  readonly rogueServerKey: string;
  /** Signed by the rogue CA: a client the real MCP must refuse. */
  readonly rogueClientCert: string;
  readonly rogueClientKey: string;
  /** Signed by the real CA but expired; they share serverKey / clientKey. */
  readonly expiredServerCert: string;
  readonly expiredClientCert: string;
}

export interface PkiOptions {
  /** CN of the client cert: the agent's hostId (default appliance-1, the hostId of examples/config.json). */
  readonly clientCn?: string;
  /** DNS names and IP addresses the server cert is valid for. */
  readonly serverNames?: string[];
}

const FILES = {
  caCert: 'ca.pem',
  caKey: 'ca.key',
  serverCert: 'server.pem',
  serverKey: 'server.key',
  clientCert: 'client.pem',
  clientKey: 'client.key',
  rogueCaCert: 'rogue-ca.pem',
  rogueServerCert: 'rogue-server.pem',
  rogueServerKey: 'rogue-server.key',
  rogueClientCert: 'rogue-client.pem',
  rogueClientKey: 'rogue-client.key',
  expiredServerCert: 'expired-server.pem',
  expiredClientCert: 'expired-client.pem',
} as const satisfies Record<Exclude<keyof Pki, 'dir'>, string>;

const ROGUE_CA_KEY = 'rogue-ca.key';

function pkiPaths(dir: string): Pki {
  const abs = resolve(dir);
  const paths = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, join(abs, f)]));
  return { dir: abs, ...paths } as Pki;
}

function openssl(args: string[]): Promise<unknown> {
  return execa('openssl', args, { stdin: 'ignore' }).catch((e: unknown) => {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim().split('\n').slice(-2).join(' ')}`);
  });
}

function sanEntry(name: string): string {
  return isIP(name) ? `IP:${name}` : `DNS:${name}`;
}

/**
 * Our own openssl config so the result does not depend on the system's openssl.cnf. The `ca`
 * section exists only to back-date the expired certs (`openssl x509` cannot set notBefore).
 */
function opensslConfig(dir: string, serverNames: string[]): string {
  return `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${serverNames.map(sanEntry).join(',')}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = backdating_ca
[backdating_ca]
database = ${join(dir, 'ca-db', 'index.txt')}
new_certs_dir = ${join(dir, 'ca-db')}
serial = ${join(dir, 'ca-db', 'serial')}
default_md = sha256
policy = any_cn
unique_subject = no
copy_extensions = none
[any_cn]
commonName = supplied
`;
}

async function newKey(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  await chmod(path, 0o600);
}

async function newCa(cnf: string, key: string, cert: string, cn: string): Promise<void> {
  await newKey(key);
  await openssl(['req', '-config', cnf, '-new', '-x509', '-key', key, '-subj', `/CN=${cn}`, '-days', '3650', '-sha256', '-extensions', 'ca_ext', '-out', cert]);
}

interface LeafSpec {
  readonly cnf: string;
  readonly ca: { cert: string; key: string };
  readonly key: string;
  readonly cert: string;
  readonly cn: string;
  readonly ext: 'server_ext' | 'client_ext';
  /** Generate the key first (false when reusing an existing key). */
  readonly freshKey: boolean;
  readonly expired?: boolean;
}

async function newLeaf(spec: LeafSpec): Promise<void> {
  if (spec.freshKey) await newKey(spec.key);
  const csr = `${spec.cert}.csr`;
  await openssl(['req', '-config', spec.cnf, '-new', '-key', spec.key, '-subj', `/CN=${spec.cn}`, '-out', csr]);
  if (spec.expired) {
    await openssl([
      'ca',
      '-batch',
      '-config',
      spec.cnf,
      '-notext',
      '-cert',
      spec.ca.cert,
      '-keyfile',
      spec.ca.key,
      '-in',
      csr,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200201000000Z',
      '-extfile',
      spec.cnf,
      '-extensions',
      spec.ext,
      '-out',
      spec.cert,
    ]);
  } else {
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      spec.ca.cert,
      '-CAkey',
      spec.ca.key,
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      '825',
      '-sha256',
      '-extfile',
      spec.cnf,
      '-extensions',
      spec.ext,
      '-out',
      spec.cert,
    ]);
  }
  await rm(csr);
}

export async function generatePki(dir: string, opts: PkiOptions = {}): Promise<Pki> {
  const clientCn = opts.clientCn ?? 'appliance-1';
  const serverNames = opts.serverNames ?? ['localhost', '127.0.0.1'];
  const p = pkiPaths(dir);
  await mkdir(join(p.dir, 'ca-db'), { recursive: true, mode: 0o700 });
  const cnf = join(p.dir, 'openssl.cnf');
  await writeFile(cnf, opensslConfig(p.dir, serverNames));
  await writeFile(join(p.dir, 'ca-db', 'index.txt'), '');
  await writeFile(join(p.dir, 'ca-db', 'serial'), `${randomBytes(8).toString('hex').toUpperCase()}\n`);
  const rogueCaKey = join(p.dir, ROGUE_CA_KEY);

  await Promise.all([newCa(cnf, p.caKey, p.caCert, 'compliance-agent test CA'), newCa(cnf, rogueCaKey, p.rogueCaCert, 'rogue CA')]);
  const ca = { cert: p.caCert, key: p.caKey };
  const rogue = { cert: p.rogueCaCert, key: rogueCaKey };
  const serverCn = serverNames[0] ?? 'localhost';
  await Promise.all([
    newLeaf({ cnf, ca, key: p.serverKey, cert: p.serverCert, cn: serverCn, ext: 'server_ext', freshKey: true }),
    newLeaf({ cnf, ca, key: p.clientKey, cert: p.clientCert, cn: clientCn, ext: 'client_ext', freshKey: true }),
    newLeaf({ cnf, ca: rogue, key: p.rogueServerKey, cert: p.rogueServerCert, cn: serverCn, ext: 'server_ext', freshKey: true }),
    newLeaf({ cnf, ca: rogue, key: p.rogueClientKey, cert: p.rogueClientCert, cn: clientCn, ext: 'client_ext', freshKey: true }),
  ]);
  // `openssl ca` updates its database files: one at a time.
  await newLeaf({ cnf, ca, key: p.serverKey, cert: p.expiredServerCert, cn: serverCn, ext: 'server_ext', freshKey: false, expired: true });
  await newLeaf({ cnf, ca, key: p.clientKey, cert: p.expiredClientCert, cn: clientCn, ext: 'client_ext', freshKey: false, expired: true });
  return p;
}

/** The PKI in `dir` if generatePki made one there before, else null. */
export async function loadPki(dir: string): Promise<Pki | null> {
  const p = pkiPaths(dir);
  try {
    await Promise.all(Object.keys(FILES).map((k) => access(p[k as keyof typeof FILES])));
    return p;
  } catch {
    return null;
  }
}
