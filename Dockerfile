# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) \
#          --build-arg COMMIT=$(git rev-parse HEAD) -t flink-agent .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${COMMIT}" \
      -o /out/flink-agent ./cmd/flink-agent \
 && mkdir -p /out/positions

# distroless/static: no shell, no libc, CA certificates for Loki/PagerDuty TLS.
FROM gcr.io/distroless/static-debian12
COPY --from=build /out/flink-agent /usr/local/bin/flink-agent
# The default positions directory, owned by Flink's uid/gid 9999. With a
# read-only root filesystem mount an emptyDir here (the Helm chart does).
COPY --from=build --chown=9999:9999 /out/positions /var/lib/flink-agent
# Flink's user and group, so the agent can read Flink's log files.
USER 9999:9999
EXPOSE 9250
ENTRYPOINT ["/usr/local/bin/flink-agent"]
