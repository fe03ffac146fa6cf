# The image the Kubernetes Job (configs/k8s) runs: bench with PyPI's CUDA build of torch (its CUDA libraries come as
# wheels, so a plain Python base image suffices; the node needs an NVIDIA driver new enough for that CUDA, which
# `bench doctor` checks). NGC's PyTorch images also work, but set TF32 overrides that bench then flags.
#
#   docker build -t registry.example.com/bench:0.1.0 .
#   docker run --rm --gpus all --shm-size=16g registry.example.com/bench:0.1.0            # the node suite
#   docker run --rm --gpus all registry.example.com/bench:0.1.0 bench doctor
FROM python:3.12-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    BENCH_RESULTS_DIR=/results
WORKDIR /opt/bench
COPY pyproject.toml README.md ./
COPY bench ./bench
COPY configs ./configs
RUN pip install . && bench --version
VOLUME /results
CMD ["bench", "run", "--config", "/opt/bench/configs/node.toml"]
