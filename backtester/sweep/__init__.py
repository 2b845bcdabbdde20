"""Parameter sweeps: seeded runs fanned out to worker processes over NATS JetStream.

`plan` expands a sweep config into points, `coordinator` publishes them and collects one result per
point, `worker` runs them through `execute` (the one seam to the engine), and `nats_adapter` is the
only module that speaks NATS. See docs/distributed.md and adr/0006-sweeps-over-nats.md.
"""
