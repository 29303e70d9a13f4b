FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
RUN pip install --no-cache-dir "grpcio-tools>=1.85,<2" \
    && scripts/gen_proto.sh python \
    && pip uninstall -y grpcio-tools \
    && pip install --no-cache-dir .

RUN useradd --create-home --shell /usr/sbin/nologin occ
USER occ

ENTRYPOINT ["occ"]
CMD ["demo"]
