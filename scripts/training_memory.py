"""Predicted against measured memory of a training step (issue 15): VGG-16 at batch 1 and the
CLI's default small net at batch 64.

    python scripts/training_memory.py          # about a minute: one VGG-16 training step twice

The prediction is ``minivgg.arithmetic.training_memory`` (arithmetic on the layer sizes); the
measurement ``minivgg.arithmetic.measure_training_memory`` (NumPy's arrays, by tracemalloc).
benchmarks/bench_model.py measures the whole process's resident peak, which adds the runtime.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minivgg.arithmetic import measure_training_memory, training_memory  # noqa: E402

NETWORKS = (("VGG-16 @224", dict(config="D", input_size=224, num_classes=1000), 1),
            ("A, width 1/4, fc 128 @32", dict(config="A", input_size=32, width=0.25,
                                               fc_width=128, num_classes=10), 64))

if __name__ == "__main__":
    for label, config, batch in NETWORKS:
        model, measured = measure_training_memory(config, batch)
        predicted = training_memory(model.summary(), batch).peak
        print(f"{label}, batch {batch}: predicted {predicted / 2**20:.1f} MiB, measured "
              f"{measured / 2**20:.1f} MiB ({100 * (predicted / measured - 1):+.1f}%)")
