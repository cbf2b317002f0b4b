"""Federated domain generalization on Flower: a config's `federated:` block spreads the training
environments over clients (FedDG-Benchmark's heterogeneity λ), each client trains a dagrad algorithm on
its share in a Flower ClientApp and meters its own energy, and a Flower ServerApp aggregates (FedAvg,
FedProx, FedDG-GA), evaluates the global model every round on the held-out domain and the clients'
validation splits, and writes the same records a centralised run writes (rounds are epochs). GradSamp
replaces a client's local training (client side) or a whole round (server side) by a draw from the last
two models. The same apps run in Flower's simulation runtime on one machine and in its deployment runtime.

Its lower floor is plain math with no Flower import: the λ partition (partition), weighted averaging and
FedProx's proximal term (aggregate), FedDG-GA's re-weighting from generalisation gaps (fedga). FedSR, a
client objective, is an algorithm like any other (dagrad/algorithms/fedsr.py)."""
