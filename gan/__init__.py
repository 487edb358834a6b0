"""GANs on 2-D data with the Cascading Rejection discriminator, written as forward/backward pairs in NumPy.

Reading order: nn.py (layers, spectral norm), mlp.py, optim.py (Adam), losses.py, cascade.py
(Cascading Rejection), data.py (ring / grid and mode metrics), train.py, energy.py, compare.py.
`ebm` imports the small networks from nn.py, mlp.py and optim.py.
"""
