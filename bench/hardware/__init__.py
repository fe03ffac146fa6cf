"""The hardware seam: the only code that talks to NVML, CUDA, /proc and psutil. Everything above it runs on CPU."""
