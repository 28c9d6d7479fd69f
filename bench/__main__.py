"""`make bench`: run every benchmark in bench/ and write their results under bench/results/."""

from bench import stage_throughput

if __name__ == "__main__":
    import json

    print(json.dumps(stage_throughput.main(), indent=2))
