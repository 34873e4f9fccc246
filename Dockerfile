# ocimirror container image. Build: docker build -t ocimirror:local .   (podman: podman build --format docker ...,
# or the OCI format drops HEALTHCHECK)
# Multi-stage: TypeScript is compiled with the dev dependencies; the runtime stage carries production
# dependencies and dist/ only, and runs as the unprivileged `node` user (uid 1000) of the official image.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Dependencies in their own layer, so a source change rebuilds only dist/ (`prepare` would need src/ here).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    OCIMIRROR_HEALTH_URL=http://127.0.0.1:5000/healthz
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run tsc, which is a dev dependency and not installed here. Never loaded by Node:
# type declarations and source maps (the AWS SDK alone ships 13 MB of them), and addons built for the Bare runtime
# (*.bare, 6.5 MB that tar-stream's bare-fs brings for 13 platforms; on Node tar-stream uses fs).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
 && find node_modules -type d -name dist-types -prune -exec rm -rf {} + \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' -o -name '*.bare' \) -delete
COPY --from=build /src/dist ./dist
COPY bin ./bin
# The default configuration, with the cache moved onto the volume (fail the build if that line ever changes).
COPY config/ocimirror.yaml /etc/ocimirror/ocimirror.yaml
RUN sed -i 's|^  dir: "./data"|  dir: "/var/lib/ocimirror"|' /etc/ocimirror/ocimirror.yaml \
 && grep -q '^  dir: "/var/lib/ocimirror"' /etc/ocimirror/ocimirror.yaml \
 && mkdir -p /var/lib/ocimirror && chown node:node /var/lib/ocimirror
USER node
VOLUME /var/lib/ocimirror
EXPOSE 5000
# Node's fetch, so the image needs no curl. With server.tls, set OCIMIRROR_HEALTH_URL=https://… and
# NODE_EXTRA_CA_CERTS to the CA file (the certificate must name 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.OCIMIRROR_HEALTH_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/ocimirror.js"]
CMD ["serve", "--config", "/etc/ocimirror/ocimirror.yaml"]
