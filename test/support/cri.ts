/**
 * A small CRI client (runtime.v1 RuntimeService and ImageService) over a unix socket, as
 * the kubelet speaks to containerd: @grpc/grpc-js with the CRI api.proto from Debian's
 * golang-github-kubernetes-cri-api-dev, its gogoproto import and options left out
 * (proto-loader has no use for them and cannot find the file).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { criProto } from './tools.ts';

export interface CriClient {
  /** Calls a RuntimeService or ImageService method by name, e.g. `RunPodSandbox`. */
  call<T = any>(method: string, request: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  close(): void;
}

const IMAGE_METHODS = new Set(['ListImages', 'ImageStatus', 'PullImage', 'RemoveImage', 'ImageFsInfo']);

let loaded: Promise<grpc.GrpcObject> | undefined;

/** The proto without gogoproto, loaded once. */
function loadCri(): Promise<grpc.GrpcObject> {
  loaded ??= (async () => {
    const text = (await readFile(criProto(), 'utf8'))
      .split('\n')
      .filter((line) => !/^import "github\.com\/gogo\//.test(line) && !/^option \(gogoproto\./.test(line))
      .join('\n');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-cri-proto-'));
    try {
      const file = path.join(dir, 'api.proto');
      await writeFile(file, text);
      const def = await protoLoader.load(file, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
      return grpc.loadPackageDefinition(def);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return loaded;
}

export async function criClient(socket: string): Promise<CriClient> {
  const pkg = (await loadCri()) as any;
  const v1 = pkg.runtime.v1;
  const address = `unix://${socket}`;
  const runtime = new v1.RuntimeService(address, grpc.credentials.createInsecure());
  const images = new v1.ImageService(address, grpc.credentials.createInsecure());
  return {
    call<T>(method: string, request: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
      const service = IMAGE_METHODS.has(method) ? images : runtime;
      return new Promise<T>((resolve, reject) => {
        service[method](request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
          if (err) reject(new Error(`CRI ${method}: ${err.details || err.message}`));
          else resolve(res);
        });
      });
    },
    close() {
      runtime.close();
      images.close();
    },
  };
}
