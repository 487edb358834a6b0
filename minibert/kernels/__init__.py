"""CUDA kernels for masked attention, loaded with CuPy on first use (import this module explicitly).

    from minibert.kernels import attention_forward, attention_backward, flash_attention, flash_decode

Importing needs neither CUDA nor CuPy; the first call compiles the .cu source with NVRTC.
"""
from minibert.kernels.attention import attention_backward, attention_forward, flash_attention, flash_decode

__all__ = ["attention_backward", "attention_forward", "flash_attention", "flash_decode"]
