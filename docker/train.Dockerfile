# The training image: sre-llm with LLaMA Factory and torch (CUDA libraries come with the PyPI
# torch wheels), for `sre-llm train` on a GPU node or in a Kubeflow PyTorchJob
# (training.cluster). Evaluation and registration run in it too.
#   docker build -f docker/train.Dockerfile -t ghcr.io/sre-llm/sre-llm-train:0.2.0 .
# Pin the base by digest in your build (FROM python:3.12-slim@sha256:…) and the image in the spec
# (training.cluster.image takes only IMAGE@sha256:…).
FROM python:3.12-slim
# git: the dataset collector and the run record read git; no other system package is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY sre_llm ./sre_llm
COPY templates ./templates
RUN python -m venv /opt/sre-llm \
    && /opt/sre-llm/bin/pip install --no-cache-dir -c constraints.txt '.[train,dataset,registry,eval]' \
    && rm -rf /src
ENV PATH=/opt/sre-llm/bin:$PATH \
    HOME=/workspace \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --uid 1000 --create-home --home-dir /workspace trainer
USER 1000:1000
WORKDIR /workspace
ENTRYPOINT ["sre-llm"]
CMD ["train", "--help"]
