// The CRI image service over gRPC on a containerd socket: the same calls kubelet and `crictl pull` make,
// so a pull here goes through the CRI plugin's registry config_path (hosts.toml), like a K3s node.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { assertLoopbackOnly } from './hosts-toml.js';

const PROTO = fileURLToPath(new URL('./cri-api.proto', import.meta.url));

export interface CriImage {
  id: string;
  repoDigests: string[];
  repoTags: string[];
  /** uint64 as a decimal string (proto-loader `longs: String`) */
  size: string;
}

export interface CriPullOptions {
  timeoutMs?: number;
  /** Registry credentials as kubelet passes them from an image pull secret. */
  auth?: { username?: string; password?: string; auth?: string; serverAddress?: string; registryToken?: string };
}

export interface CriClient {
  /** Resolves to the image_ref the runtime returns (containerd: the image id, `sha256:<config digest>`). */
  pullImage(ref: string, opts?: CriPullOptions): Promise<string>;
  imageStatus(ref: string): Promise<CriImage | undefined>;
  listImages(): Promise<CriImage[]>;
  removeImage(ref: string): Promise<void>;
  close(): void;
}

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
type Unary<Req, Res> = (req: Req, options: grpc.CallOptions, cb: Callback<Res>) => grpc.ClientUnaryCall;
interface RawImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: string;
}
interface ImageServiceStub extends grpc.Client {
  PullImage: Unary<{ image: { image: string }; auth?: CriPullOptions['auth'] }, { imageRef: string }>;
  ImageStatus: Unary<{ image: { image: string }; verbose: boolean }, { image?: RawImage | null }>;
  ListImages: Unary<Record<string, never>, { images: RawImage[] }>;
  RemoveImage: Unary<{ image: { image: string } }, Record<string, never>>;
}

let stubConstructor: grpc.ServiceClientConstructor | undefined;

function imageServiceConstructor(): grpc.ServiceClientConstructor {
  if (!stubConstructor) {
    const definition = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      runtime: { v1: { ImageService: grpc.ServiceClientConstructor } };
    };
    stubConstructor = pkg.runtime.v1.ImageService;
  }
  return stubConstructor;
}

function toImage(raw: RawImage): CriImage {
  return { id: raw.id, repoDigests: [...raw.repoDigests], repoTags: [...raw.repoTags], size: raw.size };
}

/** `hostsDir`: the containerd's config_path; when given, pulls that could leave this machine are refused. */
export function criClient(socket: string, opts: { hostsDir?: string } = {}): CriClient {
  const Ctor = imageServiceConstructor();
  const stub = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as ImageServiceStub;

  function call<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(stub, req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res as Res);
      });
    });
  }

  return {
    async pullImage(ref, pullOpts = {}) {
      if (opts.hostsDir) assertLoopbackOnly(opts.hostsDir, ref);
      const req = { image: { image: ref }, ...(pullOpts.auth ? { auth: pullOpts.auth } : {}) };
      const res = await call(stub.PullImage, req, pullOpts.timeoutMs ?? 120_000);
      return res.imageRef;
    },
    async imageStatus(ref) {
      const res = await call(stub.ImageStatus, { image: { image: ref }, verbose: false }, 30_000);
      // The CRI contract: an absent image is a nil `image`, not an error.
      return res.image ? toImage(res.image) : undefined;
    },
    async listImages() {
      const res = await call(stub.ListImages, {}, 30_000);
      return res.images.map(toImage);
    },
    async removeImage(ref) {
      await call(stub.RemoveImage, { image: { image: ref } }, 30_000);
    },
    close() {
      stub.close();
    },
  };
}
