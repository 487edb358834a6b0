"""Energy-based models q(x) = exp(-U(x)) / Z, sampled by Langevin dynamics, trained by contrastive
divergence, and scored exactly in 2-D (Z by quadrature). See ebm/README.md."""
from .buffer import ReplayBuffer
from .energies import BananaEnergy, GaussianEnergy, GaussianMixtureEnergy, RingEnergy
from .neural import (energy_backward, energy_forward, energy_input_grad, neural_energy,
                     neural_energy_init)
from .samplers import effective_temperature, langevin_step, mala, mala_step, practical_langevin, ula
