# syntax=docker/dockerfile:1
#
# The Instant token service: logins and Centrifugo connection and subscription tokens.
# Build from the repository root:
#
#   docker build -f deployments/tokensvc.Dockerfile -t instant-tokensvc .
#
# The final image is distroless (no shell, no package manager) and runs as
# the nonroot user (uid 65532). Configuration comes from INSTANT_* variables;
# run the image with --help to list them, or with hash-password to hash a
# password for the users file (the password on standard input).

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
    go build -trimpath -ldflags="-s -w" -o /out/tokensvc ./cmd/tokensvc

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokensvc /usr/local/bin/tokensvc
# INSTANT_TOKENSVC_HTTP_ADDR (default :8090): /instant/..., /healthz, /readyz, /metrics.
EXPOSE 8090
USER nonroot
ENTRYPOINT ["/usr/local/bin/tokensvc"]
