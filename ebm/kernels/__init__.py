"""CUDA kernels for Langevin sampling, loaded with CuPy on first use (import this module explicitly).

    from ebm.kernels import langevin_chains, langevin_update

Importing needs neither CUDA nor CuPy; the first call compiles langevin.cu with NVRTC.
"""
from ebm.kernels.langevin import (AnalyticEnergy, banana_params, gaussian_params, langevin_chains,
                                  langevin_update, mixture_params, params_from_energy, ring_params)

__all__ = ["AnalyticEnergy", "banana_params", "gaussian_params", "langevin_chains", "langevin_update",
           "mixture_params", "params_from_energy", "ring_params"]
