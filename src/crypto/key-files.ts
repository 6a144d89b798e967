import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AgentError, ensureDir, errnoCode } from '../common/index.js';
import { parsePublicKey, parseSecretKey, formatPublicKey, formatSecretKey, publicKeyToPem, isValidKeyName, type PublicKey, type SecretKey } from './keys.js';
import { publicKeyOf, randomSeed } from './ed25519.js';

export function loadSecretKeyFile(path: string): SecretKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentError('key_read', `${path}: cannot read key file (${errnoCode(e, 'error')})`);
  }
  const pemName = basename(path).replace(/\.(pem|key|sk)$/, '');
  return parseSecretKey(text, pemName, path);
}

export function loadPublicKeyFile(path: string): PublicKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentError('key_read', `${path}: cannot read public key file (${errnoCode(e, 'error')})`);
  }
  return parsePublicKey(text, path);
}

/** A `--pubkey` argument: an inline `name:base64` key or a path to a key file. */
export function resolvePublicKeyArg(arg: string): PublicKey {
  if (!existsSync(arg) && /^[^/]+:[A-Za-z0-9+/=]+$/.test(arg)) return parsePublicKey(arg, '--pubkey');
  return loadPublicKeyFile(arg);
}

export interface KeygenResult {
  secretPath: string;
  publicPath: string;
  publicPemPath: string;
  publicKey: string;
}

/** keygen NAME DIR: NAME.key (0600, nix secret-key form), NAME.pub (name:base64), NAME.pub.pem (for openssl). */
export function generateKeyFiles(name: string, dir: string): KeygenResult {
  if (!isValidKeyName(name)) throw new AgentError('key_name', `key name ${JSON.stringify(name)} must match [A-Za-z0-9][A-Za-z0-9._-]*`);
  // Like mkdir -p (the umask applies): the secret key itself is 0600, the public files are for sharing.
  ensureDir(dir, 'key directory', 0o777);
  const secretPath = join(dir, `${name}.key`);
  if (existsSync(secretPath)) throw new AgentError('key_exists', `${secretPath} already exists; refusing to overwrite a key`);
  const seed = randomSeed();
  const key: SecretKey = { keyId: name, seed, publicKey: publicKeyOf(seed) };
  writeFileSync(secretPath, formatSecretKey(key) + '\n', { mode: 0o600, flag: 'wx' });
  const publicKey = formatPublicKey(name, key.publicKey);
  const publicPath = join(dir, `${name}.pub`);
  const publicPemPath = join(dir, `${name}.pub.pem`);
  writeFileSync(publicPath, publicKey + '\n', { mode: 0o644 });
  writeFileSync(publicPemPath, publicKeyToPem(key.publicKey), { mode: 0o644 });
  return { secretPath, publicPath, publicPemPath, publicKey };
}
