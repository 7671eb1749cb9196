"""TieredCache policy: LRU within byte budgets on the device and in host RAM, pins never evicted."""

from pipelines.model_cache import Move, TieredCache

MB = 1 << 20


def test_device_then_host_then_disk() -> None:
    cache = TieredCache(device_budget=10 * MB, host_budget=10 * MB)
    assert cache.place_on_device("a", 6 * MB) == []
    assert cache.place_on_device("b", 6 * MB) == [Move("a", "host")]
    assert (cache.tier_of("a"), cache.tier_of("b")) == ("host", "device")
    assert cache.place_on_device("c", 6 * MB) == [Move("b", "host"), Move("a", "disk")]
    assert cache.tier_of("a") is None and list(cache.host) == ["b"]


def test_switch_back_from_host_is_a_move_not_a_load() -> None:
    cache = TieredCache(device_budget=10 * MB, host_budget=100 * MB)
    cache.place_on_device("a", 6 * MB)
    cache.place_on_device("b", 6 * MB)
    assert cache.place_on_device("a", 6 * MB) == [Move("b", "host")]
    assert list(cache.device) == ["a"] and list(cache.host) == ["b"]


def test_least_recently_used_goes_first() -> None:
    cache = TieredCache(device_budget=20 * MB, host_budget=0)
    for model in ("a", "b", "c"):
        cache.place_on_device(model, 6 * MB)
    cache.place_on_device("a", 6 * MB)  # a is now the most recent
    assert cache.place_on_device("d", 6 * MB) == [Move("b", "host"), Move("b", "disk")]


def test_pins_and_count_bound() -> None:
    cache = TieredCache(device_budget=100 * MB, host_budget=0, max_on_device=2, pinned=frozenset({"base"}))
    cache.place_on_device("base", 10 * MB)
    cache.place_on_device("x", 10 * MB)
    assert cache.place_on_device("y", 10 * MB) == [Move("x", "host"), Move("x", "disk")]
    assert cache.tier_of("base") == "device"
    # A model bigger than the budget still runs: being over budget beats failing the job.
    tight = TieredCache(device_budget=1 * MB, host_budget=0, pinned=frozenset({"p"}))
    tight.place_on_device("p", 5 * MB)
    assert tight.place_on_device("q", 5 * MB) == [] and set(tight.device) == {"p", "q"}
