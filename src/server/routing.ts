// Which registry a request is for: decoded ?ns= (containerd) → a /v2/<registry>/… path prefix (podman, skopeo)
// → the configured default (Docker). Only configured registries (or "*") are served: never an open proxy. The
// lookup that decides "served" also yields the mirror entry, which the request carries down from here on.
import type { Access } from '../config/policies.js';
import type { Target } from '../oci/service.js';
import { isRegistryName } from '../config/registries.js';
import { OciError } from '../oci/errors.js';
import { checkName } from '../oci/names.js';

export interface Route<M = unknown> {
  registry: string;
  /** The mirror entry serving `registry`, resolved here once. */
  mirror: M;
  /** Normalised repository at that registry ("library/alpine"). */
  repo: string;
  /** How the client named it (for Link rewriting): the path name, and whether it used ns. */
  clientName: string;
  viaNs: boolean;
}

export interface RoutingTable<M = unknown> {
  defaultRegistry: string;
  /** The mirror entry for a registry (its own, else "*"), or undefined when ocimirror does not serve it. */
  resolve(registry: string): M | undefined;
  /** `policies` deny and `allowRepositories`: a refused repository gets 403 before any upstream contact. */
  access?(registry: string, repo: string): Access;
}

export function resolveRoute<M>(name: string, ns: string | undefined, table: RoutingTable<M>): Route<M> {
  let registry: string;
  let repo = name;
  if (ns !== undefined && ns !== '') {
    registry = ns.toLowerCase();
    if (!isRegistryName(registry) || registry === '*') throw new OciError('NAME_INVALID', { ns }, { message: 'invalid ns parameter: expected a registry host[:port]' });
  } else {
    const slash = name.indexOf('/');
    const first = slash > 0 ? name.slice(0, slash) : '';
    if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) {
      // The first component names a registry (as in an image reference); an unconfigured one is refused below
      // rather than passed to the default registry as part of a repository name.
      if (!isRegistryName(first)) throw new OciError('NAME_INVALID', { name }, { message: `invalid registry prefix ${JSON.stringify(first)}` });
      registry = first.toLowerCase();
      repo = name.slice(slash + 1);
    } else {
      registry = table.defaultRegistry;
    }
  }
  const mirror = table.resolve(registry);
  if (mirror === undefined) {
    throw new OciError('NAME_UNKNOWN', { registry }, { message: `registry ${registry} is not configured on this mirror` });
  }
  checkName(repo);
  if ((registry === 'docker.io' || registry === 'index.docker.io') && !repo.includes('/')) repo = `library/${repo}`;
  const access = table.access?.(registry, repo);
  if (access && !access.allowed) throw new OciError('DENIED', { registry, repository: repo }, { message: access.reason });
  return { registry, mirror, repo, clientName: name, viaNs: ns !== undefined && ns !== '' };
}

/** What every service request starts with: the routed registry, its mirror entry and repository. */
export function targetOf<M>(route: Route<M>, signal: AbortSignal): Target<M> {
  return { registry: route.registry, mirror: route.mirror, repo: route.repo, signal };
}
