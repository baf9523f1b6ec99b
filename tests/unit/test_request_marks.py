"""A request answered once is recognised when its queue delivers it again."""


def test_a_partition_claims_each_sequence_once_and_never_an_older_one(store):
    with store.atomic():
        assert store.requests.claim(3, 10)
    with store.atomic():
        assert not store.requests.claim(3, 10)  # delivered again after its commit
        assert not store.requests.claim(3, 9)
        assert store.requests.claim(3, 11)
        assert store.requests.claim(4, 1)  # partitions are apart
    assert store.requests.handled(3) == 11
    assert store.requests.handled(4) == 1
    assert store.requests.handled(5) == 0


def test_a_claim_rolled_back_with_its_answer_leaves_the_request_to_answer(store):
    try:
        with store.atomic():
            assert store.requests.claim(1, 5)
            raise RuntimeError("the answer failed")
    except RuntimeError:
        pass
    with store.atomic():
        assert store.requests.claim(1, 5)
