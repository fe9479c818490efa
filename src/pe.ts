/**
 * Reads just enough of a PE (Windows executable) file to accept or refuse a Windows
 * binary: its machine, whether it is PE32+, its subsystem, the DLLs it imports, and
 * whether a symbol table or debug directory was left in it.
 */

export interface PeInfo {
  readonly machine: number;
  /** Optional header magic: 0x20b for PE32+, 0x10b for PE32. */
  readonly magic: number;
  readonly subsystem: number;
  /** DLL names from the import directory, as written. */
  readonly imports: readonly string[];
  readonly sections: readonly string[];
  readonly symbols: boolean;
  readonly debugDirectory: boolean;
}

export const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
export const PE32_PLUS = 0x20b;
export const IMAGE_SUBSYSTEM_WINDOWS_CUI = 3;

const DIR_IMPORT = 1;
const DIR_DEBUG = 6;
/** A real import table lists a few DLLs; a hostile one must not make us loop for ever. */
const MAX_IMPORTS = 256;

export class PeFormatError extends Error {}

/**
 * DLLs that every Windows (Server Core, Nano Server) installation has in System32, and
 * the API-set contracts that resolve to them. A binary importing anything else would not
 * start in a bare Windows container.
 */
const SYSTEM_DLLS = new Set([
  'kernel32.dll', 'kernelbase.dll', 'ntdll.dll', 'msvcrt.dll', 'ucrtbase.dll', 'advapi32.dll', 'ws2_32.dll', 'mswsock.dll',
  'user32.dll', 'shell32.dll', 'ole32.dll', 'oleaut32.dll', 'bcrypt.dll', 'crypt32.dll', 'iphlpapi.dll', 'userenv.dll',
  'winmm.dll', 'secur32.dll', 'dnsapi.dll', 'netapi32.dll', 'powrprof.dll', 'psapi.dll', 'version.dll', 'rpcrt4.dll',
]);

export function isSystemDll(name: string): boolean {
  const n = name.toLowerCase();
  return SYSTEM_DLLS.has(n) || /^(api|ext)-ms-win-[a-z0-9-]+\.dll$/.test(n);
}

export function parsePe(buf: Uint8Array): PeInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (offset: number, length: number, what: string) => {
    if (offset < 0 || length < 0 || offset + length > buf.byteLength) throw new PeFormatError(`truncated: ${what} outside the file`);
  };
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);

  need(0, 64, 'DOS header');
  if (buf[0] !== 0x4d || buf[1] !== 0x5a) throw new PeFormatError('not a PE file (no MZ header)');
  const pe = u32(0x3c);
  need(pe, 24, 'PE header');
  if (u32(pe) !== 0x00004550) throw new PeFormatError('not a PE file (no PE signature)');
  const machine = u16(pe + 4);
  const nsections = u16(pe + 6);
  const nsymbols = u32(pe + 16);
  const optSize = u16(pe + 20);
  const opt = pe + 24;
  need(opt, optSize, 'optional header');
  if (optSize < 2) throw new PeFormatError('no optional header: not an executable');
  const magic = u16(opt);
  if (magic !== PE32_PLUS && magic !== 0x10b) throw new PeFormatError(`bad optional header magic 0x${magic.toString(16)}`);
  const dirsAt = opt + (magic === PE32_PLUS ? 112 : 96);
  if (optSize < dirsAt - opt) throw new PeFormatError('optional header too short');
  const subsystem = u16(opt + 68);
  const ndirs = Math.min(u32(dirsAt - 4), Math.floor((opt + optSize - dirsAt) / 8));
  const dir = (i: number) => (i < ndirs ? { rva: u32(dirsAt + i * 8), size: u32(dirsAt + i * 8 + 4) } : { rva: 0, size: 0 });

  const secAt = opt + optSize;
  need(secAt, nsections * 40, 'section table');
  const sections: { name: string; va: number; vsize: number; raw: number; rawSize: number }[] = [];
  for (let i = 0; i < nsections; i++) {
    const s = secAt + i * 40;
    const nameBytes = buf.subarray(s, s + 8);
    const end = nameBytes.indexOf(0);
    sections.push({
      name: Buffer.from(nameBytes.subarray(0, end < 0 ? 8 : end)).toString('latin1'),
      vsize: u32(s + 8),
      va: u32(s + 12),
      rawSize: u32(s + 16),
      raw: u32(s + 20),
    });
  }
  const offsetOf = (rva: number, what: string): number => {
    const s = sections.find((x) => rva >= x.va && rva < x.va + Math.max(x.vsize, x.rawSize));
    if (!s || rva - s.va >= s.rawSize) throw new PeFormatError(`${what} (RVA 0x${rva.toString(16)}) is in no section's file data`);
    return s.raw + (rva - s.va);
  };
  const cString = (offset: number, what: string): string => {
    need(offset, 1, what);
    const end = buf.indexOf(0, offset);
    if (end < 0 || end - offset > 255) throw new PeFormatError(`${what} is not a terminated name`);
    return Buffer.from(buf.subarray(offset, end)).toString('latin1');
  };

  const imports: string[] = [];
  const imp = dir(DIR_IMPORT);
  if (imp.rva !== 0 && imp.size !== 0) {
    let at = offsetOf(imp.rva, 'import directory');
    for (;;) {
      need(at, 20, 'import descriptor');
      const nameRva = u32(at + 12);
      if (nameRva === 0 && u32(at) === 0 && u32(at + 16) === 0) break;
      if (imports.length >= MAX_IMPORTS) throw new PeFormatError(`more than ${MAX_IMPORTS} imported DLLs`);
      imports.push(cString(offsetOf(nameRva, 'imported DLL name'), 'imported DLL name'));
      at += 20;
    }
  }
  const debug = dir(DIR_DEBUG);
  return {
    machine,
    magic,
    subsystem,
    imports,
    sections: sections.map((s) => s.name),
    // Go leaves a pointer to an empty string table (no symbols) even with -s: only a count means symbols.
    symbols: nsymbols !== 0,
    debugDirectory: debug.rva !== 0 || debug.size !== 0,
  };
}

/** Every reason this is not an acceptable Windows amd64 console binary; empty when it is. */
export function peProblems(info: PeInfo): string[] {
  const problems: string[] = [];
  if (info.machine !== IMAGE_FILE_MACHINE_AMD64) problems.push(`machine is 0x${info.machine.toString(16)}, expected 0x8664 (amd64)`);
  if (info.magic !== PE32_PLUS) problems.push('PE32, expected PE32+ (64-bit)');
  if (info.subsystem !== IMAGE_SUBSYSTEM_WINDOWS_CUI) problems.push(`subsystem ${info.subsystem}, expected ${IMAGE_SUBSYSTEM_WINDOWS_CUI} (console)`);
  const foreign = info.imports.filter((d) => !isSystemDll(d));
  if (foreign.length > 0) problems.push(`imports non-system DLLs: ${foreign.join(', ')}`);
  if (info.symbols) problems.push('not stripped (has a COFF symbol table)');
  if (info.debugDirectory) problems.push('has a debug directory');
  const debugSections = info.sections.filter((s) => s.startsWith('.debug') || s.startsWith('/'));
  if (debugSections.length > 0) problems.push(`not stripped (has ${debugSections.join(', ')})`);
  return problems;
}
