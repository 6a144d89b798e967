export { sign, verify, publicKeyOf, randomSeed } from './ed25519.js';
export { parsePublicKey, formatPublicKey, formatSecretKey, type SecretKey, type PublicKey } from './keys.js';
export {
  pae,
  signEnvelope,
  openEnvelope,
  verifyEnvelope,
  envelopeSigners,
  addSignature,
  canonicalEnvelope,
  envelopeHash,
  EnvelopeSchema,
  ORDER_PAYLOAD_TYPE,
  EVIDENCE_PAYLOAD_TYPE,
  RECEIPT_PAYLOAD_TYPE,
  type Envelope,
  type EnvelopeCheck,
} from './dsse.js';
export { loadSecretKeyFile, loadPublicKeyFile, resolvePublicKeyArg, generateKeyFiles, type KeygenResult } from './key-files.js';
export { decodeBase64Strict } from './base64.js';
