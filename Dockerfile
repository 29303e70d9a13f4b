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
# listen beyond loopback to be reachable: run with -e OCC_HOST=0.0.0.0 -p 50051:50051.
ENV OCC_DATA_DIR=/home/occ/data

ENTRYPOINT ["occ"]
CMD ["serve", "--tariff", "/app/examples/tariff", "--demo"]
