/**
 * A layer in the Windows layer format, as BuildKit's Windows layer writer makes it for a
 * Windows image built on Linux: a `Hives/` and a `Files/` directory at the top, every file
 * of the image under `Files/`, and on every entry the PAX records Windows reads back
 * (file attributes, and for files and directories a security descriptor that gives
 * Administrators and SYSTEM full control and Users read and execute).
 */
import { layerEntries, type LayerFile, type Layer, layerOf } from './layer.ts';
import { type TarEntry, gzip, writeTar } from './tar.ts';

const FILE_ATTRIBUTE_DIRECTORY = '16';
const FILE_ATTRIBUTE_ARCHIVE = '32';

// O:BAG:SYD:(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;;FA;;;BA)(A;OICIIO;GA;;;CO)(A;OICI;0x1200a9;;;BU)(A;CI;LC;;;BU)(A;CI;DC;;;BU)
const DIR_SD = 'AQAEgBQAAAAkAAAAAAAAADAAAAABAgAAAAAABSAAAAAgAgAAAQEAAAAAAAUSAAAAAgCoAAcAAAAAAxgA/wEfAAECAAAAAAAFIAAAACACAAAAAxQA/wEfAAEBAAAAAAAFEgAAAAAAGAD/AR8AAQIAAAAAAAUgAAAAIAIAAAALFAAAAAAQAQEAAAAAAAMAAAAAAAMYAKkAEgABAgAAAAAABSAAAAAhAgAAAAIYAAQAAAABAgAAAAAABSAAAAAhAgAAAAIYAAIAAAABAgAAAAAABSAAAAAhAgAA';
// O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)(A;;0x1200a9;;;BU)
const FILE_SD = 'AQAEgBQAAAAkAAAAAAAAADAAAAABAgAAAAAABSAAAAAgAgAAAQEAAAAAAAUSAAAAAgBMAAMAAAAAABgA/wEfAAECAAAAAAAFIAAAACACAAAAABQA/wEfAAEBAAAAAAAFEgAAAAAAGACpABIAAQIAAAAAAAUgAAAAIQIAAA==';

export const WINDOWS_PAX = { fileAttr: 'MSWINDOWS.fileattr', rawSd: 'MSWINDOWS.rawsd', creationTime: 'LIBARCHIVE.creationtime' } as const;

/** The entries of a Windows layer holding `files` (paths as in the image: /pause.exe). */
export function windowsLayerEntries(files: readonly LayerFile[], mtime: number): TarEntry[] {
  const created = `${mtime}.0`;
  const top = (name: string): TarEntry => ({ path: name, type: 'dir', mode: 0o755, uid: 0, gid: 0, pax: { [WINDOWS_PAX.fileAttr]: FILE_ATTRIBUTE_DIRECTORY, [WINDOWS_PAX.creationTime]: created } });
  const inner = layerEntries(files).map((e): TarEntry => ({
    ...e,
    path: `Files/${e.path}`,
    pax: {
      [WINDOWS_PAX.fileAttr]: e.type === 'dir' ? FILE_ATTRIBUTE_DIRECTORY : FILE_ATTRIBUTE_ARCHIVE,
      [WINDOWS_PAX.creationTime]: created,
      [WINDOWS_PAX.rawSd]: e.type === 'dir' ? DIR_SD : FILE_SD,
    },
  }));
  return [top('Hives'), top('Files'), ...inner];
}

export function windowsLayerTar(files: readonly LayerFile[], mtime: number): Uint8Array {
  return writeTar(windowsLayerEntries(files, mtime), mtime);
}

export function buildWindowsLayer(files: readonly LayerFile[], mtime: number, compress: (tar: Uint8Array) => Uint8Array = gzip): Layer {
  const tar = windowsLayerTar(files, mtime);
  return layerOf(tar, compress(tar));
}
