"""`python -m benchmarks` (`make bench`): load-test the gateway and compare with the in-process pipeline."""
