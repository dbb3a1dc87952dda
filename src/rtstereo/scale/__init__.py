"""Past one machine: batches of pairs and long videos on Ray Data (``pip install 'rtstereo[scale]'``).

Ray is imported only when one of these engines runs; inference works without it.

- :func:`rtstereo.scale.predict.run_ray`: pairs listed on the driver, read and decoded in parallel
  tasks, predicted by a pool of actors that each hold one predictor, files written by the actors.
- :func:`rtstereo.scale.video.run_ray_video`: a video cut into frame ranges predicted in parallel.
- :mod:`rtstereo.scale.session`: joining a cluster or starting a local Ray, and sizing the actors.
"""
