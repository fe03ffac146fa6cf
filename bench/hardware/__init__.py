"""The hardware seam: the code that talks to NVML, CUDA and /proc, and reads the host through psutil (devices,
host, health). Everything above it runs on CPU. psutil is also read outside it, for what is not hardware: the
training run's own memory (bench.workloads.train) and the network interfaces a launch can bind (bench.launch)."""
