"""Run the project's CUDA kernel sources on the CPU (g++ + cuda_emu.h), for tests without a GPU."""
