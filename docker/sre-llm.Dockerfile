# The sre-llm image: the gateway (the serving container of a release's Knative Service, vLLM beside
# it), the pod's pull-and-verify step (`sre-llm registry pull --verify`), the collector
# (`sre-llm collect serve`) and the rollout jobs. Light on purpose: no torch, no LLaMA Factory.
#   docker build -f docker/sre-llm.Dockerfile -t ghcr.io/sre-llm/sre-llm:0.2.0 .
# Pin the base by digest in your build (FROM python:3.12-slim@sha256:…) and the image in the spec
# (deployment.gateway_image: ghcr.io/sre-llm/sre-llm:0.2.0@sha256:…).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY sre_llm ./sre_llm
COPY templates ./templates
# constraints.txt pins every package the extras resolve to.
RUN python -m venv /opt/sre-llm \
    && /opt/sre-llm/bin/pip install --no-cache-dir -c constraints.txt '.[serve,registry,dataset]'

FROM python:3.12-slim
COPY --from=build /opt/sre-llm /opt/sre-llm
# HOME on /tmp: the root filesystem is read-only in the pod, /tmp is an emptyDir.
ENV PATH=/opt/sre-llm/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["sre-llm"]
CMD ["gateway", "--help"]
