/**
 * Reads just enough of an ELF file to accept or refuse a pause binary: its identity
 * (class, byte order, machine), whether it needs a dynamic loader, and whether it
 * still carries a symbol table.
 */
import type { Platform } from './platforms.ts';

export interface ElfInfo {
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  readonly type: number;
  readonly machine: number;
  readonly interpreter: boolean;
  readonly dynamic: boolean;
  readonly sections: readonly string[];
}

const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const ET_EXEC = 2;
const ET_DYN = 3;

export class ElfFormatError extends Error {}

export function parseElf(buf: Uint8Array): ElfInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (offset: number, length: number, what: string) => {
    if (offset < 0 || offset + length > buf.byteLength) throw new ElfFormatError(`truncated: ${what} outside the file`);
  };
  need(0, 16, 'identification');
  if (buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) throw new ElfFormatError('not an ELF file (bad magic)');
  const cls = buf[4] === 1 ? 32 : buf[4] === 2 ? 64 : undefined;
  const endian = buf[5] === 1 ? 'little' : buf[5] === 2 ? 'big' : undefined;
  if (!cls) throw new ElfFormatError(`bad ELF class ${buf[4]}`);
  if (!endian) throw new ElfFormatError(`bad ELF data encoding ${buf[5]}`);
  const le = endian === 'little';
  const is64 = cls === 64;
  need(0, is64 ? 64 : 52, 'ELF header');

  const u16 = (o: number) => view.getUint16(o, le);
  const u32 = (o: number) => view.getUint32(o, le);
  const addr = (o: number) => (is64 ? Number(view.getBigUint64(o, le)) : view.getUint32(o, le));

  const type = u16(16);
  const machine = u16(18);
  const phoff = addr(is64 ? 32 : 28);
  const shoff = addr(is64 ? 40 : 32);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  const shentsize = u16(is64 ? 58 : 46);
  const shnum = u16(is64 ? 60 : 48);
  const shstrndx = u16(is64 ? 62 : 50);

  let interpreter = false;
  let dynamic = false;
  need(phoff, phentsize * phnum, 'program headers');
  for (let i = 0; i < phnum; i++) {
    const ptype = u32(phoff + i * phentsize);
    if (ptype === PT_INTERP) interpreter = true;
    if (ptype === PT_DYNAMIC) dynamic = true;
  }

  const sections: string[] = [];
  if (shnum > 0 && shoff > 0) {
    need(shoff, shentsize * shnum, 'section headers');
    const sh = (i: number) => shoff + i * shentsize;
    const strOff = addr(sh(shstrndx) + (is64 ? 24 : 16));
    const strSize = addr(sh(shstrndx) + (is64 ? 32 : 20));
    need(strOff, strSize, 'section name table');
    const names = buf.subarray(strOff, strOff + strSize);
    for (let i = 0; i < shnum; i++) {
      const nameOff = u32(sh(i));
      const end = names.indexOf(0, nameOff);
      sections.push(Buffer.from(names.subarray(nameOff, end < 0 ? names.length : end)).toString('latin1'));
    }
  }
  return { class: cls, endian, type, machine, interpreter, dynamic, sections };
}

/**
 * Every reason this binary is not an acceptable pause for the platform; empty when it is.
 * Static-pie binaries (ET_DYN with PT_DYNAMIC) are refused too: pause is built plain -static.
 */
export function elfProblems(info: ElfInfo, platform: Platform): string[] {
  const problems: string[] = [];
  const want = platform.elf;
  if (info.machine !== want.machine) problems.push(`machine is ${info.machine}, expected ${want.machine} (${platform.arch})`);
  if (info.class !== want.class) problems.push(`${info.class}-bit, expected ${want.class}-bit`);
  if (info.endian !== want.endian) problems.push(`${info.endian}-endian, expected ${want.endian}-endian`);
  if (info.type !== ET_EXEC && info.type !== ET_DYN) problems.push(`ELF type ${info.type} is not an executable`);
  if (info.interpreter) problems.push('dynamically linked (has PT_INTERP)');
  if (info.dynamic) problems.push('has a dynamic section (PT_DYNAMIC): not fully static');
  if (info.sections.includes('.symtab')) problems.push('not stripped (has .symtab)');
  return problems;
}
