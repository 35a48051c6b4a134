"""Trainable models. Each module that the trainer can run defines ``make_task(**task_args) -> Task``
(see training/trainer.py); a config file names it by module: ``{"task": "motion_ae", ...}``.

- motion_ae: the motion latent autoencoder, one per body part (residual VQ), the generator's latent space.
- fgd: the full-body motion autoencoder whose clip embeddings FGD and diversity are measured in
  (training/metrics.py).
"""
