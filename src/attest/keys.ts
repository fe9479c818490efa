/**
 * Signing and verification keys, as cosign makes them: `cosign generate-key-pair` writes an
 * ENCRYPTED SIGSTORE PRIVATE KEY (a PKCS#8 key sealed with scrypt + NaCl secretbox, its
 * password in COSIGN_PASSWORD) and a PEM public key. A plain PEM PKCS#8 EC P-256 key is
 * accepted too. Only ECDSA P-256 with SHA-256, which is what cosign signs with by default.
 *
 * No error message carries key bytes or the password: only the file name and what is wrong.
 */
import { type KeyObject, createHash, createPrivateKey, createPublicKey, scrypt as scryptCb } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import nacl from 'tweetnacl';
import { PauseBuildError } from '../errors.ts';

const ENCRYPTED_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
const ENCRYPTED_COSIGN_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY';
/** Bound on a key file: a key is a few hundred bytes; anything huge is not one. */
const MAX_KEY_FILE = 64 * 1024;
/** cosign writes N=2^15..2^16; refusing more keeps a hostile file from asking for gigabytes. */
const MAX_SCRYPT_N = 1 << 20;

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public key as PEM (SPKI). */
  readonly publicPem: string;
  /** base64(sha256(SPKI DER)): the bundle's publicKey hint, as cosign writes it. */
  readonly hint: string;
}

export interface VerifyKey {
  readonly file: string;
  readonly publicKey: KeyObject;
  readonly hint: string;
}

async function readKeyFile(file: string, what: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PauseBuildError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable')}`, {
      hint: `pass a key file made by \`cosign generate-key-pair\``,
    });
  }
  if (bytes.length > MAX_KEY_FILE) throw new PauseBuildError(`${what} ${file} is not a key (${bytes.length} bytes)`, { hint: 'pass a key file made by `cosign generate-key-pair`' });
  return bytes.toString('utf8');
}

function pemBlock(text: string): { label: string; der: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  return m ? { label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') } : undefined;
}

export function keyHint(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

function requireP256(key: KeyObject, file: string, what: string): void {
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  if (curve !== 'prime256v1') {
    const kind = key.asymmetricKeyType === 'ec' ? `EC ${curve}` : (key.asymmetricKeyType ?? 'unknown').toUpperCase();
    throw new PauseBuildError(`${what} ${file} is an ${kind} key; only ECDSA P-256 is supported`, { hint: 'make one with `cosign generate-key-pair`' });
  }
}

function scrypt(password: Buffer, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, 32, { N, r, p, maxmem: 256 * N * r + (1 << 20) }, (e, k) => (e ? reject(e) : resolve(k))));
}

interface Sealed {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

function parseSealed(der: Buffer, file: string): Sealed {
  const bad = () => new PauseBuildError(`signing key ${file} is not a valid cosign key file`, { hint: 'make one with `cosign generate-key-pair`' });
  let v: Sealed;
  try {
    v = JSON.parse(der.toString('utf8')) as Sealed;
  } catch {
    throw bad();
  }
  const { N, r, p } = v?.kdf?.params ?? ({} as Sealed['kdf']['params']);
  if (v?.kdf?.name !== 'scrypt' || v?.cipher?.name !== 'nacl/secretbox' || typeof v.ciphertext !== 'string' || typeof v.kdf.salt !== 'string' || typeof v.cipher.nonce !== 'string') throw bad();
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0) || N > MAX_SCRYPT_N || r > 32 || p > 16) throw bad();
  return v;
}

async function openSealed(sealed: Sealed, password: string, file: string): Promise<Buffer> {
  const { N, r, p } = sealed.kdf.params;
  const key = await scrypt(Buffer.from(password, 'utf8'), Buffer.from(sealed.kdf.salt, 'base64'), N, r, p);
  const nonce = Buffer.from(sealed.cipher.nonce, 'base64');
  if (nonce.length !== nacl.secretbox.nonceLength) throw new PauseBuildError(`signing key ${file} is not a valid cosign key file`, { hint: 'make one with `cosign generate-key-pair`' });
  const plain = nacl.secretbox.open(new Uint8Array(Buffer.from(sealed.ciphertext, 'base64')), new Uint8Array(nonce), new Uint8Array(key));
  key.fill(0);
  if (!plain) throw new PauseBuildError(`wrong password for signing key ${file}`, { hint: 'set COSIGN_PASSWORD to the password the key was made with' });
  return Buffer.from(plain);
}

/** Loads --sign-key FILE; `password` is COSIGN_PASSWORD (empty when unset, as cosign's non-interactive default). */
export async function loadSigningKey(file: string, password: string | undefined): Promise<SigningKey> {
  const text = await readKeyFile(file, 'signing key');
  const block = pemBlock(text);
  if (!block) throw new PauseBuildError(`signing key ${file} is not a PEM key`, { hint: 'pass the cosign.key from `cosign generate-key-pair`, or a PEM PKCS#8 EC P-256 key' });
  let der: Buffer;
  if (block.label === ENCRYPTED_LABEL || block.label === ENCRYPTED_COSIGN_LABEL) {
    der = await openSealed(parseSealed(block.der, file), password ?? '', file);
  } else if (block.label === 'PRIVATE KEY' || block.label === 'EC PRIVATE KEY') {
    der = block.der;
  } else {
    throw new PauseBuildError(`signing key ${file} is a PEM "${block.label}", not a private key`, { hint: 'pass the cosign.key from `cosign generate-key-pair`, or a PEM PKCS#8 EC P-256 key' });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: block.label === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs8' });
  } catch {
    throw new PauseBuildError(`signing key ${file} holds no readable private key`, { hint: 'pass a PKCS#8 key, e.g. from `cosign generate-key-pair`' });
  } finally {
    der.fill(0);
  }
  requireP256(privateKey, file, 'signing key');
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), hint: keyHint(publicKey) };
}

/** Loads a --verify-key FILE: a cosign.pub (PEM SPKI), or a certificate's key is not accepted. */
export async function loadVerifyKey(file: string): Promise<VerifyKey> {
  const text = await readKeyFile(file, 'verify key');
  const block = pemBlock(text);
  if (!block || block.label !== 'PUBLIC KEY') throw new PauseBuildError(`verify key ${file} is not a PEM public key`, { hint: 'pass the cosign.pub from `cosign generate-key-pair`' });
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: block.der, format: 'der', type: 'spki' });
  } catch {
    throw new PauseBuildError(`verify key ${file} holds no readable public key`, { hint: 'pass the cosign.pub from `cosign generate-key-pair`' });
  }
  requireP256(publicKey, file, 'verify key');
  return { file, publicKey, hint: keyHint(publicKey) };
}
