/** The WWW-Authenticate challenge parser (RFC 7235): pure, no I/O. */

export interface Challenge {
  /** Lower-case: `basic`, `bearer`, … */
  readonly scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a WWW-Authenticate value into its challenges (RFC 7235): several may be
 * given, separated by commas; parameters are `name=token` or `name="quoted, \"string\""`.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && /[\s]/.test(header[i]!)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z/:]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    let out = '';
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      out += header[i];
      i++;
    }
    i++; // closing quote
    return out;
  };
  while (i < n) {
    skipSpace();
    while (i < n && header[i] === ',') {
      i++;
      skipSpace();
    }
    if (i >= n) break;
    const scheme = readToken();
    if (scheme === '') {
      i++; // junk character: skip it
      continue;
    }
    const current = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    challenges.push(current);
    // Parameters until the next thing that is a scheme (a token not followed by '=').
    for (;;) {
      skipSpace();
      while (i < n && header[i] === ',') {
        i++;
        skipSpace();
      }
      if (i >= n) break;
      const save = i;
      const name = readToken();
      skipSpace();
      if (name === '' || header[i] !== '=') {
        // token68 (e.g. `Negotiate abc==`) or the next challenge's scheme
        if (name !== '' && Object.keys(current.params).length === 0 && (i >= n || header[i] === ',')) {
          // token68 directly after the scheme: ignore it
          continue;
        }
        i = save;
        break;
      }
      i++; // '='
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      current.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

