import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeFormatError, isSystemDll, parsePe, peProblems } from '../src/pe.ts';

interface PeSpec {
  machine?: number;
  magic?: number;
  subsystem?: number;
  imports?: string[];
  sections?: string[];
  nsymbols?: number;
  debugDir?: boolean;
}

/** A minimal PE: DOS header, PE header, PE32+ optional header, one .idata section with the imports. */
function makePe(o: PeSpec = {}): Uint8Array {
  const peAt = 0x40;
  const optSize = 240;
  const secNames = ['.idata', ...(o.sections ?? [])];
  const secAt = peAt + 24 + optSize;
  const rawAt = 0x400;
  const va = 0x1000;
  const imports = o.imports ?? ['KERNEL32.dll'];
  // Descriptors (20 bytes each, plus a zero one), then the names.
  const descSize = (imports.length + 1) * 20;
  const names = imports.map((n) => Buffer.from(`${n}\0`, 'latin1'));
  const rawSize = descSize + names.reduce((n, b) => n + b.length, 0) + 16;
  const buf = new Uint8Array(rawAt + rawSize);
  const v = new DataView(buf.buffer);
  buf.set([0x4d, 0x5a]);
  v.setUint32(0x3c, peAt, true);
  v.setUint32(peAt, 0x00004550, true);
  v.setUint16(peAt + 4, o.machine ?? 0x8664, true);
  v.setUint16(peAt + 6, secNames.length, true);
  v.setUint32(peAt + 12, o.nsymbols ? 0x300 : 0, true);
  v.setUint32(peAt + 16, o.nsymbols ?? 0, true);
  v.setUint16(peAt + 20, optSize, true);
  const opt = peAt + 24;
  v.setUint16(opt, o.magic ?? 0x20b, true);
  v.setUint16(opt + 68, o.subsystem ?? 3, true);
  v.setUint32(opt + 108, 16, true);
  v.setUint32(opt + 112 + 8, va, true); // import directory
  v.setUint32(opt + 112 + 12, descSize, true);
  if (o.debugDir) {
    v.setUint32(opt + 112 + 48, va, true);
    v.setUint32(opt + 112 + 52, 28, true);
  }
  secNames.forEach((name, i) => {
    const s = secAt + i * 40;
    buf.set(Buffer.from(name.slice(0, 8), 'latin1'), s);
    if (i === 0) {
      v.setUint32(s + 8, rawSize, true);
      v.setUint32(s + 12, va, true);
      v.setUint32(s + 16, rawSize, true);
      v.setUint32(s + 20, rawAt, true);
    }
  });
  let nameOff = descSize;
  imports.forEach((_, i) => {
    v.setUint32(rawAt + i * 20 + 12, va + nameOff, true);
    buf.set(names[i]!, rawAt + nameOff);
    nameOff += names[i]!.length;
  });
  return buf;
}

describe('parsePe', () => {
  it('reads machine, magic, subsystem, imports and sections', () => {
    const info = parsePe(makePe({ imports: ['KERNEL32.dll', 'msvcrt.dll'], sections: ['.text'] }));
    assert.equal(info.machine, 0x8664);
    assert.equal(info.magic, 0x20b);
    assert.equal(info.subsystem, 3);
    assert.deepEqual(info.imports, ['KERNEL32.dll', 'msvcrt.dll']);
    assert.deepEqual(info.sections, ['.idata', '.text']);
    assert.equal(info.symbols, false);
    assert.equal(info.debugDirectory, false);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(0), /truncated/],
    ['ELF file', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(60)]), /no MZ header/],
    ['MZ without PE signature', (() => { const b = makePe(); b[0x40] = 0; return b; })(), /no PE signature/],
    ['PE header past the end', (() => { const b = makePe(); new DataView(b.buffer).setUint32(0x3c, 1 << 20, true); return b; })(), /truncated: PE header/],
    ['bad optional magic', makePe({ magic: 0x107 }), /bad optional header magic/],
    ['import directory outside every section', (() => { const b = makePe(); new DataView(b.buffer).setUint32(0x40 + 24 + 120, 0x9000, true); return b; })(), /import directory .* in no section/],
    ['import name without terminator', (() => { const b = makePe({ imports: ['KERNEL32.dll'] }); b.fill(0x41, 0x400 + 40); return b; })(), /not a terminated name|truncated/],
  ];
  for (const [name, bytes, error] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parsePe(bytes), (e: unknown) => e instanceof PeFormatError && error.test(e.message));
    });
  }
});

describe('peProblems', () => {
  const cases: [string, PeSpec, RegExp | undefined][] = [
    ['a mingw console binary', { imports: ['KERNEL32.dll', 'msvcrt.dll'] }, undefined],
    ['a Go binary', { imports: ['kernel32.dll'], sections: ['.symtab'] }, undefined],
    ['API-set imports', { imports: ['api-ms-win-core-synch-l1-2-0.dll'] }, undefined],
    ['i386 machine', { machine: 0x14c }, /machine is 0x14c, expected 0x8664/],
    ['arm64 machine', { machine: 0xaa64 }, /machine is 0xaa64/],
    ['PE32', { magic: 0x10b }, /PE32, expected PE32\+/],
    ['GUI subsystem', { subsystem: 2 }, /subsystem 2, expected 3 \(console\)/],
    ['a runtime DLL', { imports: ['KERNEL32.dll', 'libwinpthread-1.dll'] }, /non-system DLLs: libwinpthread-1\.dll/],
    ['MSVC runtime', { imports: ['VCRUNTIME140.dll'] }, /non-system DLLs: VCRUNTIME140\.dll/],
    ['a symbol table', { nsymbols: 12 }, /not stripped \(has a COFF symbol table\)/],
    ['a debug directory', { debugDir: true }, /has a debug directory/],
    ['DWARF sections', { sections: ['.debug_i'] }, /not stripped \(has \.debug_i\)/],
    ['long-named (DWARF) sections', { sections: ['/4'] }, /not stripped \(has \/4\)/],
  ];
  for (const [name, spec, problem] of cases) {
    it(problem ? `refuses ${name}` : `accepts ${name}`, () => {
      const problems = peProblems(parsePe(makePe(spec)));
      if (problem) assert.ok(problems.some((p) => problem.test(p)), problems.join('; '));
      else assert.deepEqual(problems, []);
    });
  }

  it('knows system DLLs case-insensitively and nothing else', () => {
    assert.equal(isSystemDll('KERNEL32.DLL'), true);
    assert.equal(isSystemDll('Ws2_32.dll'), true);
    assert.equal(isSystemDll('kernel32.dll.evil'), false);
    assert.equal(isSystemDll('pthread.dll'), false);
  });
});
