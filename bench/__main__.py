"""`make bench`: run every benchmark in bench/ and write their results under bench/results/.

A benchmark whose data or peer venv is missing prints one `skip:` line, and the next one runs.
"""

import json

from bench import (
    ablate_sample,
    classifier,
    decontamination,
    dedup_grid,
    dedup_quality,
    dedup_scale,
    dedup_signatures_vs_datatrove,
    extract_quality,
    langid_accuracy,
    pretrain_shakespeare,
    privacy_speed,
    quality_stage_vs_datatrove,
    quality_vs_datatrove,
    skipping,
    stage_profile,
    stage_throughput,
    toxicity,
)
from bench import tokenizer as tokenizer_bench

if __name__ == "__main__":
    with skipping("stage_throughput"):
        print(json.dumps(stage_throughput.main(), indent=2))
    with skipping("dedup_quality"):
        print(json.dumps(dedup_quality.main(), indent=2))
    with skipping("dedup_signatures_vs_datatrove"):
        print(json.dumps(dedup_signatures_vs_datatrove.main(), indent=2))  # ~5 min: datatrove is slow
    with skipping("dedup_grid"):
        print(dedup_grid.markdown(dedup_grid.main()))  # ~15 min: 28 settings of dedup_quality
    with skipping("dedup_scale"):
        print(json.dumps(dedup_scale.main(), indent=2))  # ~5-8 min: 100k and 300k generated documents
    with skipping("privacy_speed"):
        print(json.dumps(privacy_speed.main(), indent=2))  # ~8-10 min: naive presidio is the slow side
    with skipping("extract_quality"):
        print(json.dumps(extract_quality.main()["held_out"], indent=2))  # ~3 min: four extractors, both halves
    with skipping("langid_accuracy"):
        print(json.dumps(langid_accuracy.main(), indent=2))  # ~5-7 min: four variants over 16.7k texts
    with skipping("tokenizer"):
        print(tokenizer_bench.markdown(tokenizer_bench.main()))  # ~6 min: A-B-..-B-A cycles vs the raw library
    with skipping("quality_vs_datatrove"):
        quality_vs_datatrove.main()  # ~5-8 min: datatrove's chain six times + two quality builds
    with skipping("quality_stage_vs_datatrove"):
        quality_stage_vs_datatrove.main()  # ~6 min: datatrove's language filter + chain three times
    with skipping("stage_profile"):
        stage_profile.main()  # ~6 min
    with skipping("decontamination"):
        decontamination.main()  # ~1 min: 100k benchmark items, 479 pages twice
    with skipping("classifier"):
        classifier.main()  # ~1 min: three small models, datatrove's filter three times
    with skipping("toxicity"):
        toxicity.main()  # ~1 min: 15.6k fortunes, twelve settings
    with skipping("pretrain_shakespeare"):
        pretrain_shakespeare.main()  # ~25 min: a CPU-time sweep, a 70 s and a 10 min training run
    with skipping("ablate_sample"):
        print(ablate_sample.markdown(ablate_sample.main()))  # ~10-15 min: 4 corpus variants x 3 seeds, tiny
