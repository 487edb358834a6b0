"""GANs with the Cascading Rejection discriminator (work in progress: see the project's issues)."""
