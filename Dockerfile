# syntax=docker/dockerfile:1
# nanoclaw-broker: multi-stage build on node:20-slim. The build stage compiles better-sqlite3's
# native addon and compiles the TypeScript to dist/; the runtime stage carries the compiled
# JavaScript, the migrations, the policies and only production dependencies, and runs as non-root.

FROM node:20-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY drizzle ./drizzle
COPY drizzle-pg ./drizzle-pg
COPY policies ./policies
# Compile to dist/ (what bin/broker.js runs), then drop the TypeScript sources and dev dependencies.
RUN npm run build \
 && npm prune --omit=dev \
 && find src -name '*.ts' -delete \
 && rm -rf tsconfig.json tsconfig.build.json dist/.tsbuildinfo

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    BROKER_HOST=0.0.0.0 \
    BROKER_PORT=8787 \
    BROKER_DATA_DIR=/data \
    BROKER_POLICIES_DIR=/app/policies
WORKDIR /app
RUN groupadd --system broker && useradd --system --gid broker --home-dir /app --shell /usr/sbin/nologin broker \
 && mkdir -p -m 0700 /data && chown broker:broker /data
COPY --from=build --chown=root:root /app /app
USER broker
VOLUME ["/data"]
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8787/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "bin/broker.js"]
CMD ["serve"]
