"""Lower bounds."""

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import bounds


def test_l1_homogeneous_and_heterogeneous():
    assert bounds.l1([60, 60, 60], [100] * 5) == 2
    assert bounds.l1([150], [100, 60, 40]) == 2
    assert bounds.l1([], [100]) == 0


def test_l2_beats_l1_on_big_items():
    sizes = [51] * 10                 # no two share a bin
    assert bounds.l1(sizes, [100] * 20) == 6
    assert bounds.l2(sizes, 100) == 10


def test_l2_classic_example():
    # Martello & Toth: items 99, 94, 79, 64, 50, 46, 43, 37, 32, 19, 18, 7, 6, 3 with C=100
    sizes = [99, 94, 79, 64, 50, 46, 43, 37, 32, 19, 18, 7, 6, 3]
    assert bounds.l2(sizes, 100) >= bounds.l1(sizes, [100] * 20) == 6
    assert bounds.l2(sizes, 100) <= 7
