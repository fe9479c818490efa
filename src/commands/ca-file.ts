/** --ca-file, read for the registry client (publish, mirror) and for node configuration (sandbox-config). */
import { readFile } from 'node:fs/promises';
import { PauseBuildError } from '../errors.ts';

/** A --ca-file's PEM text; a missing file or one without a certificate is refused in one line. */
export async function readCaFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PauseBuildError(`cannot read --ca-file ${file}${code ? ` (${code})` : ''}`, { hint: 'give a readable PEM file with the registry\'s CA certificate' });
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(text)) {
    throw new PauseBuildError(`--ca-file ${file} holds no PEM certificate`, { hint: 'give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)' });
  }
  return text;
}
