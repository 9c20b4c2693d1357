"""The roofline measurements of ``python -m fusenn.bench.roofline`` (issue 15's targets: the
fused dense forward within 5 % of the bare sgemm of its shape, the large configuration's
epoch at >= 75 % of the measured sgemm peak). With ``--benchmark-disable`` (CI) the
measurement runs on small sizes only, to check that it works."""
import numpy as np

from fusenn.bench import roofline


def test_roofline_measures(benchmark):
    benchmark.group = "roofline"
    if benchmark.disabled:  # small sizes: only that the measurement works
        peak = benchmark.pedantic(roofline.sgemm_peak, kwargs={"size": 128, "repeat": 1},
                                  rounds=1)
        fused, bare = roofline.dense_overhead(16, 32, 8, repeat=1)
        assert peak > 0 and fused > 0 and bare > 0
        return
    peak = roofline.sgemm_peak()
    rate, _ = benchmark.pedantic(roofline.epoch_rate, args=("large",), rounds=1)
    benchmark.extra_info.update({"sgemm_peak_gflops": peak, "large_epoch_gflops": rate,
                                 "share_of_peak": rate / peak})


def test_epoch_flops_count_what_an_epoch_needs():
    # forward and weight gradient of both layers, input gradient of the second only
    assert roofline.epoch_flops((3, 4, 2), 10) == 2 * 10 * (2 * (12 + 8) + 8)
    assert np.isfinite(roofline.epoch_flops((784, 1024, 1024, 10), 4096))
