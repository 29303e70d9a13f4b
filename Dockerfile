FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
RUN pip install --no-cache-dir "grpcio-tools>=1.85,<2" \
    && scripts/gen_proto.sh python \
    && pip uninstall -y grpcio-tools \
    && pip install --no-cache-dir .

RUN useradd --create-home --shell /usr/sbin/nologin occ
USER occ
# The embedded Redis and metrics files live here; mount a volume to keep them. Inside a container the server must
# listen beyond loopback to be reachable: run with -e OCC_HOST=0.0.0.0 -p 50051:50051, and either TLS
# (OCC_TLS_CERT_FILE, OCC_TLS_KEY_FILE) or -e OCC_ALLOW_PLAINTEXT=true to serve plaintext on purpose. The Admin API
# stays on the container's loopback (docker exec … occ account …, with the token occ serve writes to the data dir).
ENV OCC_DATA_DIR=/home/occ/data

# gRPC (OCC_PORT) and Prometheus /metrics (OCC_METRICS_PORT); with another OCC_PORT, set OCC_SERVER for the check.
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["occ", "health", "--timeout-s", "3"]

ENTRYPOINT ["occ"]
CMD ["serve", "--tariff", "/app/examples/tariff", "--demo"]
