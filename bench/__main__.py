"""`make bench`: run every benchmark in bench/ and write their results under bench/results/."""

from bench import dedup_quality, dedup_signatures_vs_datatrove, langid_accuracy, privacy_speed, stage_throughput
from bench import dedup_scale
from bench import dedup_grid
from bench import tokenizer as tokenizer_bench
from bench import quality_vs_datatrove
from bench import pretrain_shakespeare

if __name__ == "__main__":
    import json

    print(json.dumps(stage_throughput.main(), indent=2))
    print(json.dumps(dedup_quality.main(), indent=2))
    print(json.dumps(dedup_signatures_vs_datatrove.main(), indent=2))  # ~5 min: datatrove is slow
    print(dedup_grid.markdown(dedup_grid.main()))  # ~15 min: 28 settings of dedup_quality
    print(json.dumps(dedup_scale.main(), indent=2))  # ~5-8 min: 100k and 300k generated documents
    print(json.dumps(privacy_speed.main(), indent=2))  # ~3-5 min: naive presidio is the slow side
    print(json.dumps(langid_accuracy.main(), indent=2))  # ~5-7 min: four variants over 16.7k texts
    print(tokenizer_bench.markdown(tokenizer_bench.main()))  # ~6 min: A-B-..-B-A cycles vs the raw library
    quality_vs_datatrove.main()  # ~5-8 min: datatrove's chain six times + two quality builds
    pretrain_shakespeare.main()  # ~25 min: a CPU-time sweep, a 70 s and a 10 min training run
