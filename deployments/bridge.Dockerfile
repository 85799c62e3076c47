# syntax=docker/dockerfile:1
#
# The Instant bridge: NATS envelopes in, Centrifugo publications out.
# Build from the repository root:
#
#   docker build -f deployments/bridge.Dockerfile -t instant-bridge .
#
# The final image is distroless (no shell, no package manager) and runs as
# the nonroot user (uid 65532). Configuration comes from INSTANT_* variables;
# run the image with --help to list them.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/bridge ./cmd/bridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /usr/local/bin/bridge
# INSTANT_BRIDGE_HTTP_ADDR (default :9090): /metrics, /healthz, /readyz.
EXPOSE 9090
USER nonroot
ENTRYPOINT ["/usr/local/bin/bridge"]
