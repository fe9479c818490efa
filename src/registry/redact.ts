/**
 * Keeps credentials out of anything printed. Every password, token and identity token
 * pause-build reads is registered here the moment it is read; errors and debug lines
 * pass through `redact` before they reach a person. Known shapes (Authorization
 * headers, token fields in JSON, URL user info, token query parameters) are masked
 * even when their value was never registered.
 */

const MASK = '***';
/** Shorter values would mask ordinary words; they are still never printed on purpose. */
const MIN_SECRET_LENGTH = 4;

const registered = new Set<string>();
const listeners = new Set<(secret: string) => void>();

function variants(secret: string): string[] {
  const out = new Set([secret]);
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) out.add(encoded);
  const json = JSON.stringify(secret).slice(1, -1);
  out.add(json);
  out.add(json.replaceAll('/', '\\/'));
  return [...out];
}

/** Remembers a secret (and its URL- and JSON-escaped forms) for every later `redact`. */
export function registerSecret(secret: string | undefined): void {
  if (!secret || secret.length < MIN_SECRET_LENGTH || registered.has(secret)) return;
  for (const v of variants(secret)) registered.add(v);
  for (const listener of listeners) listener(secret);
}

/** Registers user:password together with its base64 form, as sent in Basic auth. */
export function registerBasicCredentials(username: string, password: string): void {
  registerSecret(password);
  registerSecret(Buffer.from(`${username}:${password}`).toString('base64'));
}

/** Called for every secret registered from now on (and those already known), e.g. to mask them in CI logs. */
export function onSecret(listener: (secret: string) => void): () => void {
  listeners.add(listener);
  for (const s of registered) listener(s);
  return () => listeners.delete(listener);
}

const PATTERNS: readonly [RegExp, string][] = [
  // Authorization: Basic xxx / Bearer xxx, in header dumps and curl-like lines.
  [/\b(authorization\s*[:=]\s*"?(?:basic|bearer)\s+)[^\s",;]+/gi, `$1${MASK}`],
  [/\b((?:basic|bearer)\s+)[A-Za-z0-9+/_.~-]{16,}={0,2}/gi, `$1${MASK}`],
  // "token": "...", "access_token":"...", "password": "...", "identitytoken": "...", "Secret": "...", "auth": "..."
  [/("(?:token|access_token|refresh_token|identitytoken|registrytoken|password|secret|auth)"\s*:\s*")(?:[^"\\]|\\.)*(")/gi, `$1${MASK}$2`],
  // ?access_token=…, &refresh_token=…, password=… in URLs and form bodies
  [/\b((?:access_token|refresh_token|token|password)=)[^&\s"]+/gi, `$1${MASK}`],
  // Presigned storage URLs (S3, GCS, Azure, CloudFront) that blob downloads redirect to
  [/([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|X-Goog-Signature|X-Goog-Credential|Signature|sig|se|Key-Pair-Id|Policy)=)[^&\s"]+/gi, `$1${MASK}`],
  // https://user:pass@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:)[^@\s/]+@/gi, `$1${MASK}@`],
];

/** Masks the given secrets and every known credential shape in `text`. */
export function redactWith(text: string, secrets: Iterable<string>): string {
  let out = text;
  // Longest first so that a secret containing another is masked whole.
  const list = [...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  for (const s of list) out = out.split(s).join(MASK);
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

/** Masks every registered secret and every known credential shape. */
export function redact(text: string): string {
  return redactWith(text, registered);
}

/** A debug logger that only ever sees redacted lines. */
export function redactingLogger(log: ((line: string) => void) | undefined): ((line: string) => void) | undefined {
  return log && ((line) => log(redact(line)));
}

/** For tests: forget every registered secret. */
export function forgetSecrets(): void {
  registered.clear();
}
