"""Federated domain generalisation: training environments spread among clients, aggregated on a server.

The lower floor here is plain math with no federated framework imported, so strategies and tests can use
it on its own: the heterogeneity-λ partition of environments among clients (FedDG-Benchmark), weighted
averaging of client models and FedProx's proximal term (aggregate), and FedDG-GA's server-side
re-weighting from generalisation gaps (fedga). FedSR, a client objective, is an algorithm like any other
(`dagrad/algorithms/fedsr.py`, `algorithm.name: fedsr`)."""
