import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ElfFormatError, elfProblems, parseElf } from '../src/elf.ts';
import { platformFor } from '../src/platforms.ts';

/** A minimal ELF image: header, program headers, and optionally sections with names. */
function makeElf(o: { class: 32 | 64; endian: 'little' | 'big'; machine: number; type?: number; phdrs?: number[]; sections?: string[] }): Uint8Array {
  const is64 = o.class === 64;
  const le = o.endian === 'little';
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const shentsize = is64 ? 64 : 40;
  const phdrs = o.phdrs ?? [1];
  const names = ['', ...(o.sections ?? []), '.shstrtab'];
  const strtab = Buffer.from(`${names.join('\0')}\0`, 'latin1');
  const phoff = ehsize;
  const strOff = phoff + phdrs.length * phentsize;
  const shoff = strOff + strtab.length + ((8 - ((strOff + strtab.length) % 8)) % 8);
  const total = shoff + names.length * shentsize;
  const buf = new Uint8Array(total);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1], 0);
  const w = (bits: 16 | 32 | 'addr', off: number, val: number) => {
    if (bits === 16) v.setUint16(off, val, le);
    else if (bits === 32 || !is64) v.setUint32(off, val, le);
    else v.setBigUint64(off, BigInt(val), le);
  };
  w(16, 16, o.type ?? 2);
  w(16, 18, o.machine);
  w('addr', is64 ? 32 : 28, phoff);
  w('addr', is64 ? 40 : 32, shoff);
  w(16, is64 ? 54 : 42, phentsize);
  w(16, is64 ? 56 : 44, phdrs.length);
  w(16, is64 ? 58 : 46, shentsize);
  w(16, is64 ? 60 : 48, names.length);
  w(16, is64 ? 62 : 50, names.length - 1);
  phdrs.forEach((t, i) => w(32, phoff + i * phentsize, t));
  buf.set(strtab, strOff);
  let nameOff = 0;
  names.forEach((n, i) => {
    const sh = shoff + i * shentsize;
    w(32, sh, nameOff);
    if (i === names.length - 1) {
      w('addr', sh + (is64 ? 24 : 16), strOff);
      w('addr', sh + (is64 ? 32 : 20), strtab.length);
    }
    nameOff += Buffer.byteLength(n, 'latin1') + 1;
  });
  return buf;
}

const good: Record<string, Parameters<typeof makeElf>[0]> = {
  amd64: { class: 64, endian: 'little', machine: 62 },
  arm: { class: 32, endian: 'little', machine: 40 },
  arm64: { class: 64, endian: 'little', machine: 183 },
  ppc64le: { class: 64, endian: 'little', machine: 21 },
  s390x: { class: 64, endian: 'big', machine: 22 },
  riscv64: { class: 64, endian: 'little', machine: 243 },
};

describe('ELF check', () => {
  for (const [arch, spec] of Object.entries(good)) {
    it(`accepts a static stripped ${arch} executable`, () => {
      const info = parseElf(makeElf({ ...spec, sections: ['.text', '.data'] }));
      assert.deepEqual(info.sections, ['', '.text', '.data', '.shstrtab']);
      assert.deepEqual(elfProblems(info, platformFor(arch)), []);
    });
  }

  const bad: [string, string, Parameters<typeof makeElf>[0], RegExp][] = [
    ['wrong machine', 'arm64', { ...good.amd64!, machine: 62 }, /machine is 62, expected 183/],
    ['wrong word size', 'arm', { ...good.arm!, class: 64 }, /64-bit, expected 32-bit/],
    ['wrong byte order', 's390x', { ...good.s390x!, endian: 'little' }, /little-endian, expected big-endian/],
    ['dynamically linked', 'amd64', { ...good.amd64!, phdrs: [6, 3, 1, 2] }, /dynamically linked \(has PT_INTERP\)/],
    ['dynamic section', 'amd64', { ...good.amd64!, phdrs: [1, 2] }, /PT_DYNAMIC/],
    ['not stripped', 'ppc64le', { ...good.ppc64le!, sections: ['.text', '.symtab', '.strtab'] }, /not stripped \(has \.symtab\)/],
    ['not an executable', 'amd64', { ...good.amd64!, type: 1 }, /ELF type 1 is not an executable/],
  ];
  for (const [name, arch, spec, pattern] of bad) {
    it(`refuses ${name}`, () => {
      const problems = elfProblems(parseElf(makeElf(spec)), platformFor(arch));
      assert.ok(problems.some((p) => pattern.test(p)), `problems: ${problems.join('; ')}`);
    });
  }

  const broken: [string, Uint8Array, RegExp][] = [
    ['a shell script', Buffer.from('#!/bin/sh\necho hi\n'), /bad magic/],
    ['an empty file', new Uint8Array(0), /truncated/],
    ['a truncated header', makeElf(good.amd64!).subarray(0, 40), /truncated/],
    ['program headers past the end', makeElf(good.amd64!).subarray(0, 70), /truncated: program headers outside the file/],
  ];
  for (const [name, bytes, pattern] of broken) {
    it(`rejects ${name} with a format error`, () => {
      assert.throws(() => parseElf(bytes), (e: unknown) => e instanceof ElfFormatError && pattern.test(e.message));
    });
  }
});
