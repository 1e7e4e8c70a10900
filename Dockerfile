# cf bot image: slim, non-root, works with a read-only root filesystem (writable paths: /tmp and /app/var).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
COPY base ./base
COPY bot ./bot
COPY commands ./commands
COPY demo ./demo
COPY incidents ./incidents
COPY integrations ./integrations
COPY sandbox ./sandbox
RUN python -m venv /opt/cf \
 && /opt/cf/bin/pip install --no-cache-dir --disable-pip-version-check -c constraints.txt .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 cf && useradd --system --uid 10001 --gid cf --home-dir /app --shell /usr/sbin/nologin cf
COPY --from=build /opt/cf /opt/cf
WORKDIR /app
RUN mkdir -p /app/var && chown cf:cf /app/var
ENV PATH=/opt/cf/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CF_CONFIG=/etc/cf/config.yaml \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["cfbot"]
CMD ["run", "--mode", "socket", "--port", "3000"]
